//! Loader for CoppeliaSim's simple XML scene format (`.simscene.xml`).
//!
//! Pure: text in, [`Scene`] out, as strict as CoppeliaSim's own loader and no stricter. Each
//! rule names the function it was read from (coppeliaSimLib, at the tag given):
//! - root `<CoppeliaSim>` whose `<filetype>` is exactly `simpleScene`; a missing `<filetype>`
//!   makes the file invalid (`ser.cpp`, `CSer::_readXmlHeader`). A missing
//!   `<xmlSerializationNb>` is only logged (same function: `xmlGetNode_int`, required).
//! - `<simulation>`: 4.4+ read `<simulationTimeStep>`, then `<simTimeStep>`, which wins; without
//!   `<simTimeStep>` a `<simulationMode>` preset (`200ms` … `10ms`) wins
//!   (coppeliasim-v4.7.0-rev2:simulation.cpp, `CSimulation::serialize`). 4.3 reads only
//!   `<simulationTimeStep>`, and uses it only with `<simulationMode>custom</simulationMode>`;
//!   otherwise the preset (default `50ms`) applies (coppeliasim-v4.3.0-rev12:simulation.cpp,
//!   `serialize`, `getSimulationTimeStep_raw_us`). A value that is not a number is logged and
//!   ignored (`ser.cpp`, `xmlGetNode_float`).
//! - switches are true only for the exact text `true` (`ser.cpp`, `xmlGetNode_bool`).
//! - objects: the tag names of `CSceneObjectContainer::readAndAddToSceneSimpleXmlSceneObjects`
//!   (`ocTree`, not `octree`; `script` from 4.7.0); any other element is skipped with its
//!   subtree. `<common>`: `<alias>` (cut at `*`, characters outside `[A-Za-z0-9_]` become `_`:
//!   `sceneObject.cpp`, `serialize`; `tt.cpp`, `getValidAlias`), `<name>`,
//!   `<extensionString>`, `<switches><modelBase>`. A legacy `<childScript><scriptText>`; a 4.7
//!   `<script>` object has `<switches><enabled>`/`<parentIsProxy>` and `<scriptText>`
//!   (`scriptObject.cpp`, `CScriptObject::serialize`). A CDATA section that starts AND ends with
//!   `\n` loses both (`ser.cpp`, `CSer::_getNodeCdataText`).

use roxmltree::{Document, Node};

/// Simulation time step CoppeliaSim uses when a scene gives none (the `50ms` preset), seconds.
pub const DEFAULT_DT_S: f64 = 0.05;

/// The version whose loader [`parse_scene`] follows: the stand-in's default claim (4.6.0).
pub const DEFAULT_VERSION: i64 = 40600;

/// First version whose loader reads `<simTimeStep>` (coppeliasim-v4.4.0-rev0:simulation.cpp).
const SIM_TIME_STEP_SINCE: i64 = 40400;
/// First version whose loader reads `<script>` objects
/// (coppeliasim-v4.7.0-rev0:sceneObjectContainer.cpp, readAndAddToSceneSimpleXmlSceneObjects).
const SCRIPT_OBJECTS_SINCE: i64 = 40700;

/// `<simulationMode>` presets in order, seconds; index 5 is `custom`
/// (coppeliasim-v4.3.0-rev12:simulation.cpp, `serialize`).
const MODE_PRESETS: [(&str, f64); 5] = [
    ("200ms", 0.2),
    ("100ms", 0.1),
    ("50ms", 0.05),
    ("25ms", 0.025),
    ("10ms", 0.01),
];

/// Deepest object hierarchy accepted (a root object is at depth 1). Far beyond real scenes
/// (an arm or a rope is tens to a few hundred levels); it bounds the recursive walks over
/// the hierarchy (object collection, `Scene::script_order`) for any input: without it,
/// 100 000 nested dummies (5 MB) overflow a 2 MiB thread stack and abort the process.
pub const MAX_OBJECT_DEPTH: usize = 1000;

/// Element names of scene objects in a simple XML scene, for every supported version.
const OBJECT_TAGS: &[&str] = &[
    "shape",
    "joint",
    "graph",
    "camera",
    "dummy",
    "proximitySensor",
    "visionSensor",
    "forceSensor",
    "path",
    "light",
    "ocTree",
    "pointCloud",
];

/// A parsed scene.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Objects in document order (a parent always comes before its children).
    pub objects: Vec<SceneObject>,
    /// Simulation time step the loader of the version parsed for settles on, seconds.
    pub dt_s: f64,
    /// `<switches><realTime>` (default false, as in CoppeliaSim).
    pub real_time: bool,
    /// `<switches><pauseAtError>` (default true, as in CoppeliaSim).
    pub pause_at_error: bool,
    /// What CoppeliaSim's loader would log but accept (missing `xmlSerializationNb`, …).
    pub warnings: Vec<String>,
}

/// How an object's script is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// A legacy child script (`<childScript>` inside the object): `sim.getObject('.')` is the
    /// object itself.
    Child,
    /// A 4.7+ script object (`<script>`): `sim.getObject('.')` is the script object, or its
    /// parent when `parent_is_proxy` (coppeliasim-v4.7.0-rev2:simInternal.cpp,
    /// `simGetObject_internal`).
    Object { parent_is_proxy: bool },
}

/// One scene object.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneObject {
    /// Element name, e.g. `dummy` or `script`.
    pub kind: String,
    /// `<alias>` made valid as CoppeliaSim does (falls back to `<name>`, then the kind).
    pub alias: String,
    /// `<name>`, empty when absent.
    pub name: String,
    /// `<extensionString>`, empty when absent (`key{value}` pairs).
    pub extension: String,
    /// Text of the script this object runs (legacy child script, or the script object's own),
    /// `None` when it runs none (or the script object is disabled).
    pub script: Option<String>,
    /// How [`SceneObject::script`] is attached.
    pub script_kind: ScriptKind,
    /// `<common><switches><modelBase>`: `sim.getObject(':')` stops here.
    pub model_base: bool,
    /// Index of the parent object in [`Scene::objects`].
    pub parent: Option<usize>,
    /// Indices of the children, in document (hierarchy) order.
    pub children: Vec<usize>,
    /// 1-based line of the object's element, for messages.
    pub line: u32,
}

/// Why a scene could not be loaded. Each message names the line and the fix.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    #[error("scene is not well-formed XML at line {line}, column {column}: {message}")]
    Xml {
        line: u32,
        column: u32,
        message: String,
    },
    #[error("scene root is <{found}>, expected <CoppeliaSim>: is this a simple XML scene (.simscene.xml)?")]
    WrongRoot { found: String },
    #[error("scene has no <filetype>: CoppeliaSim rejects it; add <filetype>simpleScene</filetype> under <CoppeliaSim>")]
    MissingFileType,
    #[error("scene line {line}: <filetype> is {found:?}, expected exactly \"simpleScene\" (the stand-in reads only simple XML scenes)")]
    WrongFileType { line: u32, found: String },
    #[error(
        "scene line {line}: <{kind}> is nested more than {max} objects deep: flatten the hierarchy"
    )]
    TooDeep { line: u32, kind: String, max: usize },
}

impl Scene {
    /// Indices of objects that run a script, in CoppeliaSim's execution order: children
    /// before parents, siblings in hierarchy order (notes §2).
    pub fn script_order(&self) -> Vec<usize> {
        let mut order = Vec::new();
        for root in self
            .objects
            .iter()
            .enumerate()
            .filter(|(_, o)| o.parent.is_none())
        {
            self.post_order(root.0, &mut order);
        }
        order.retain(|&i| self.objects[i].script.is_some());
        order
    }

    fn post_order(&self, index: usize, out: &mut Vec<usize>) {
        for &child in &self.objects[index].children {
            self.post_order(child, out);
        }
        out.push(index);
    }

    /// Index of the first object whose alias is `alias`, searching the tree breadth first
    /// per level as `CSceneObjectContainer::_getObjectInTree` does.
    fn find_in_tree(&self, base: Option<usize>, alias: &str) -> Option<usize> {
        let level: Vec<usize> = match base {
            None => (0..self.objects.len())
                .filter(|&i| self.objects[i].parent.is_none())
                .collect(),
            Some(b) => self.objects[b].children.clone(),
        };
        if let Some(&hit) = level.iter().find(|&&i| self.objects[i].alias == alias) {
            return Some(hit);
        }
        level
            .into_iter()
            .find_map(|i| self.find_in_tree(Some(i), alias))
    }

    /// Resolves an absolute path `/A/B` (each segment searched in the subtree of the
    /// previous one, coppeliasim-v4.7.0-rev2:sceneObjectContainer.cpp, `_getObjectInTree`).
    pub fn find_path(&self, path: &str) -> Option<usize> {
        let rest = path.strip_prefix('/')?;
        let mut current = None;
        for segment in rest.split('/') {
            current = Some(self.find_in_tree(current, segment)?);
        }
        current
    }

    /// `sim.getObject(path)` as a script emitting from object `from` sees it: `.` is `from`,
    /// `..` its parent (repeatable, `../..`, `../X`), `:` the first model base up from `from`
    /// (itself included), `/A/B` absolute. A bare alias resolves to nothing
    /// (coppeliasim-v4.7.0-rev2:sceneObjectContainer.cpp, `_getObjectFromSimplePath`).
    pub fn resolve(&self, from: Option<usize>, path: &str) -> Option<usize> {
        if path.starts_with('/') {
            return self.find_path(path);
        }
        let model_of = |mut o: Option<usize>| {
            while let Some(i) = o {
                if self.objects[i].model_base {
                    break;
                }
                o = self.objects[i].parent;
            }
            o
        };
        match path {
            "." => return from,
            ":" => return model_of(from),
            _ => {}
        }
        let mut rest = path.strip_prefix("./").unwrap_or(path);
        let mut at = from;
        if let Some(r) = rest.strip_prefix(":/") {
            rest = r;
            at = model_of(at);
        }
        while let Some(r) = rest.strip_prefix("..") {
            at = self.objects[at?].parent;
            if r.is_empty() {
                return at;
            }
            rest = r.strip_prefix('/')?;
        }
        if rest.starts_with(['.', ':']) || path == rest {
            return None;
        }
        let mut base = at;
        for segment in rest.split('/') {
            base = Some(self.find_in_tree(base, segment)?);
        }
        base
    }

    /// CoppeliaSim's short path of an object, as in log origins: `/Alias`, prefixed with as
    /// many ancestors as needed for the path to resolve to it
    /// (coppeliasim-v4.6.0-rev18:sceneObject.cpp, `getObjectAlias_shortPath`; simplified:
    /// no `[n]` order suffixes).
    pub fn short_path(&self, index: usize) -> String {
        let mut path = format!("/{}", self.objects[index].alias);
        let mut up = self.objects[index].parent;
        while self.find_path(&path) != Some(index) {
            let Some(p) = up else { break };
            path = format!("/{}{path}", self.objects[p].alias);
            up = self.objects[p].parent;
        }
        path
    }
}

/// Value of `key` in a CoppeliaSim extension string, as `sim.getExtensionString(h, -1, key)`
/// returns it: `None` when the key is absent or its value empty (the function then pushes
/// nothing: coppeliasim-v4.7.0-rev2:simInternal.cpp, `simGetExtensionString_internal`). Keys and
/// values are trimmed of spaces, braces nest, the first occurrence of a key wins, and
/// `inner@outer` looks `inner` up inside the value of `outer` (`tt.cpp`, `getValueOfKey`,
/// `getAllKeyValuePairs`).
pub fn extension_value(extension: &str, key: &str) -> Option<String> {
    if key.is_empty() || extension.is_empty() {
        return None;
    }
    let mut current = extension.to_owned();
    for k in key.split('@').rev() {
        let value = key_value_pairs(&current)
            .into_iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v)
            .unwrap_or_default();
        if value.is_empty() {
            return None;
        }
        current = value;
    }
    Some(current)
}

/// `key{value}` pairs, keys and values trimmed of spaces, nested braces kept in the value,
/// duplicates dropped (coppeliasim-v4.7.0-rev2:tt.cpp, `getAllKeyValuePairs`).
fn key_value_pairs(text: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let mut depth = 0usize;
        let close = rest[open..].char_indices().find_map(|(i, ch)| {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(open + i)
        });
        let Some(close) = close else { break };
        let key = rest[..open].trim_matches(' ').to_owned();
        let value = rest[open + 1..close].trim_matches(' ').to_owned();
        if !pairs.iter().any(|(k, _)| *k == key) {
            pairs.push((key, value));
        }
        rest = &rest[close + 1..];
    }
    pairs
}

/// Parses a simple XML scene as CoppeliaSim 4.6 (the stand-in's default version) loads it.
pub fn parse_scene(xml: &str) -> Result<Scene, SceneError> {
    parse_scene_for(xml, DEFAULT_VERSION)
}

/// Parses a simple XML scene as CoppeliaSim `version` (raw, e.g. 40700) loads it.
pub fn parse_scene_for(xml: &str, version: i64) -> Result<Scene, SceneError> {
    let doc = Document::parse(xml).map_err(|e| {
        let pos = e.pos();
        SceneError::Xml {
            line: pos.row,
            column: pos.col,
            message: e.to_string(),
        }
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "CoppeliaSim" {
        return Err(SceneError::WrongRoot {
            found: root.tag_name().name().to_owned(),
        });
    }
    check_file_type(&doc, root)?;
    let mut scene = Scene {
        objects: Vec::new(),
        dt_s: DEFAULT_DT_S,
        real_time: false,
        pause_at_error: true,
        warnings: Vec::new(),
    };
    if child(root, "xmlSerializationNb").is_none() {
        scene
            .warnings
            .push("no <xmlSerializationNb> (CoppeliaSim logs its absence; add <xmlSerializationNb>1</xmlSerializationNb>)".into());
    }
    if let Some(sim) = child(root, "simulation") {
        read_simulation(&doc, sim, version, &mut scene);
    }
    let reader = ObjectReader {
        lines: &LineIndex::new(xml),
        version,
    };
    reader.collect(root, None, 1, &mut scene.objects)?;
    Ok(scene)
}

fn check_file_type(doc: &Document, root: Node) -> Result<(), SceneError> {
    let node = child(root, "filetype").ok_or(SceneError::MissingFileType)?;
    // Compared as is: CSer::_readXmlHeader does not trim.
    let found = node.text().unwrap_or("");
    if found == "simpleScene" {
        Ok(())
    } else {
        Err(SceneError::WrongFileType {
            line: line_of(doc, node),
            found: found.to_owned(),
        })
    }
}

fn read_simulation(doc: &Document, sim: Node, version: i64, scene: &mut Scene) {
    let mut warn = |node: Node, what: &str| {
        scene.warnings.push(format!(
            "scene line {}: <{}> {what}: ignored, as CoppeliaSim does",
            line_of(doc, node),
            node.tag_name().name()
        ));
    };
    let mut number = |tag: &str| {
        let node = child(sim, tag)?;
        let text = node.text().unwrap_or("");
        let value = text
            .split_whitespace()
            .next()
            .and_then(|t| t.parse::<f64>().ok());
        if value.is_none() {
            warn(node, "is not a number");
        }
        value
    };
    let simulation_time_step = number("simulationTimeStep");
    let sim_time_step = number("simTimeStep");
    let mode = child(sim, "simulationMode").and_then(|n| {
        let text = n.text().unwrap_or("");
        let index = MODE_PRESETS
            .iter()
            .position(|(name, _)| *name == text)
            .or((text == "custom").then_some(MODE_PRESETS.len()));
        if index.is_none() {
            warn(n, "is not 200ms, 100ms, 50ms, 25ms, 10ms or custom");
        }
        index
    });
    let dt = if version < SIM_TIME_STEP_SINCE {
        // 4.3: the preset decides unless it is `custom` (default preset: 50ms).
        match mode.unwrap_or(2) {
            i if i < MODE_PRESETS.len() => Some(MODE_PRESETS[i].1),
            _ => simulation_time_step.map(|d| d.clamp(0.00001, 10.0)),
        }
    } else {
        match (sim_time_step, mode) {
            (Some(d), _) => Some(d),
            (None, Some(i)) if i < MODE_PRESETS.len() => Some(MODE_PRESETS[i].1),
            (None, _) => simulation_time_step,
        }
    };
    if let Some(dt) = dt.filter(|d| d.is_finite() && *d > 0.0) {
        scene.dt_s = dt;
    }
    if let Some(switches) = child(sim, "switches") {
        if let Some(v) = switch(switches, "realTime") {
            scene.real_time = v;
        }
        if let Some(v) = switch(switches, "pauseAtError") {
            scene.pause_at_error = v;
        }
    }
}

/// A switch: true only for the exact text `true` (ser.cpp, `xmlGetNode_bool`).
fn switch(node: Node, tag: &str) -> Option<bool> {
    child(node, tag).map(|n| n.text() == Some("true"))
}

struct ObjectReader<'l> {
    lines: &'l LineIndex,
    version: i64,
}

impl ObjectReader<'_> {
    fn is_object(&self, tag: &str) -> bool {
        OBJECT_TAGS.contains(&tag) || (tag == "script" && self.version >= SCRIPT_OBJECTS_SINCE)
    }

    /// The objects under `node`, at hierarchy `depth` (1 for the scene's roots).
    fn collect(
        &self,
        node: Node,
        parent: Option<usize>,
        depth: usize,
        objects: &mut Vec<SceneObject>,
    ) -> Result<(), SceneError> {
        for element in node.children().filter(|n| n.is_element()) {
            if !self.is_object(element.tag_name().name()) {
                continue;
            }
            if depth > MAX_OBJECT_DEPTH {
                return Err(SceneError::TooDeep {
                    line: self.lines.line_of(element),
                    kind: element.tag_name().name().to_owned(),
                    max: MAX_OBJECT_DEPTH,
                });
            }
            let index = objects.len();
            objects.push(self.read(element, parent));
            if let Some(p) = parent {
                objects[p].children.push(index);
            }
            self.collect(element, Some(index), depth + 1, objects)?;
        }
        Ok(())
    }

    fn read(&self, element: Node, parent: Option<usize>) -> SceneObject {
        let common = child(element, "common");
        let text_of = |tag: &str| {
            common
                .and_then(|c| child(c, tag))
                .map(|n| n.text().unwrap_or("").to_owned())
        };
        let kind = element.tag_name().name().to_owned();
        let name = text_of("name").unwrap_or_default();
        let alias = match text_of("alias") {
            Some(a) => valid_alias(a.split('*').next().unwrap_or("")),
            None if !name.is_empty() => valid_alias(&name),
            None => default_alias(&kind),
        };
        let (script, script_kind) = if kind == "script" {
            let switches = child(element, "switches");
            let enabled = switches.and_then(|s| switch(s, "enabled")).unwrap_or(true);
            let parent_is_proxy = switches
                .and_then(|s| switch(s, "parentIsProxy"))
                .unwrap_or(false);
            let text = child(element, "scriptText").map(cdata_text);
            (
                text.filter(|_| enabled),
                ScriptKind::Object { parent_is_proxy },
            )
        } else {
            let text = child(element, "childScript")
                .and_then(|s| child(s, "scriptText"))
                .map(cdata_text);
            (text, ScriptKind::Child)
        };
        SceneObject {
            kind,
            alias,
            name,
            extension: text_of("extensionString").unwrap_or_default(),
            script,
            script_kind,
            model_base: common
                .and_then(|c| child(c, "switches"))
                .and_then(|s| switch(s, "modelBase"))
                .unwrap_or(false),
            parent,
            children: Vec::new(),
            line: self.lines.line_of(element),
        }
    }
}

/// Where the lines of the scene text start, so an object's line is a binary search.
/// roxmltree's `text_pos_at` (kept for one-off errors) walks the text from its start: once
/// per object, loading was quadratic (2 000 flat dummies, 100 kB: 8 s in the fuzz build).
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        let after_newlines = text.match_indices('\n').map(|(i, _)| i + 1);
        Self(std::iter::once(0).chain(after_newlines).collect())
    }

    /// 1-based line of a node, counted as roxmltree counts rows (one per `\n`).
    fn line_of(&self, node: Node) -> u32 {
        let starts = self.0.partition_point(|&start| start <= node.range().start);
        u32::try_from(starts).unwrap_or(u32::MAX)
    }
}

/// `tt::getValidAlias`: characters outside `[A-Za-z0-9_]` become `_`; empty becomes `_`.
fn valid_alias(alias: &str) -> String {
    if alias.is_empty() {
        return "_".into();
    }
    alias
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Alias of an object whose XML gives neither `<alias>` nor `<name>`: its kind capitalised
/// (`Dummy`, `Script`), as a new object of that kind is called.
fn default_alias(kind: &str) -> String {
    let mut chars = kind.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// All text of a node; one `\n` at each end is dropped when it has both
/// (coppeliasim-v4.7.0-rev2:ser.cpp, `CSer::_getNodeCdataText`).
fn cdata_text(node: Node) -> String {
    let text: String = node
        .children()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    match text.strip_prefix('\n').and_then(|t| t.strip_suffix('\n')) {
        Some(inner) => inner.to_owned(),
        None => text,
    }
}

fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == tag)
}

fn line_of(doc: &Document, node: Node) -> u32 {
    doc.text_pos_at(node.range().start).row
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CoppeliaSim>
    <filetype>simpleScene</filetype>
    <xmlSerializationNb>1</xmlSerializationNb>
    <simulation>
        <simTimeStep>0.01</simTimeStep>
        <switches><realTime>true</realTime><pauseAtError>false</pauseAtError></switches>
    </simulation>
    <dummy>
        <common><alias>Parent</alias><name>P</name><extensionString>host{127.0.0.1} port{9000}</extensionString></common>
        <childScript><scriptText><![CDATA[
print('parent')
]]></scriptText></childScript>
        <dummy>
            <common><alias>ChildA</alias></common>
            <childScript><scriptText><![CDATA[
-- a
]]></scriptText></childScript>
        </dummy>
        <dummy>
            <common><alias>ChildB</alias></common>
        </dummy>
    </dummy>
    <dummy>
        <common><alias>Other</alias></common>
        <childScript><scriptText><![CDATA[x = 1]]></scriptText></childScript>
    </dummy>
</CoppeliaSim>
"#;

    fn scene_with_simulation(sim: &str) -> String {
        format!("<CoppeliaSim><filetype>simpleScene</filetype><simulation>{sim}</simulation></CoppeliaSim>")
    }

    #[test]
    fn parses_objects_hierarchy_and_switches() {
        let scene = parse_scene(SCENE).unwrap();
        assert_eq!(scene.dt_s, 0.01);
        assert!(scene.real_time);
        assert!(!scene.pause_at_error);
        assert!(scene.warnings.is_empty(), "{:?}", scene.warnings);
        let aliases: Vec<_> = scene.objects.iter().map(|o| o.alias.as_str()).collect();
        assert_eq!(aliases, ["Parent", "ChildA", "ChildB", "Other"]);
        assert_eq!(scene.objects[0].children, [1, 2]);
        assert_eq!(scene.objects[2].parent, Some(0));
        assert_eq!(scene.objects[0].name, "P");
        assert_eq!(scene.objects[0].line, 9);
    }

    /// coppeliaSimLib@coppeliasim-v4.7.0-rev2:ser.cpp, CSer::_getNodeCdataText.
    #[test]
    fn cdata_loses_one_newline_at_each_end_only_when_it_has_both() {
        let scene = parse_scene(SCENE).unwrap();
        assert_eq!(scene.objects[0].script.as_deref(), Some("print('parent')"));
        assert_eq!(scene.objects[1].script.as_deref(), Some("-- a"));
        assert_eq!(scene.objects[2].script, None);
        assert_eq!(scene.objects[3].script.as_deref(), Some("x = 1"));
        let one_sided = "<CoppeliaSim><filetype>simpleScene</filetype><dummy><common><alias>D</alias></common>\
            <childScript><scriptText><![CDATA[\nx = 1]]></scriptText></childScript></dummy></CoppeliaSim>";
        let scene = parse_scene(one_sided).unwrap();
        assert_eq!(scene.objects[0].script.as_deref(), Some("\nx = 1"));
    }

    #[test]
    fn script_order_is_children_before_parents() {
        let scene = parse_scene(SCENE).unwrap();
        assert_eq!(scene.script_order(), [1, 0, 3]);
    }

    #[test]
    fn defaults_match_coppeliasim() {
        let scene =
            parse_scene("<CoppeliaSim><filetype>simpleScene</filetype></CoppeliaSim>").unwrap();
        assert_eq!(scene.dt_s, DEFAULT_DT_S);
        assert!(!scene.real_time);
        assert!(scene.pause_at_error);
        assert!(scene.objects.is_empty());
        assert_eq!(
            scene.warnings.len(),
            1,
            "missing xmlSerializationNb is logged"
        );
    }

    /// coppeliaSimLib@coppeliasim-v4.7.0-rev2:sceneObjectContainer.cpp, _getObjectFromSimplePath.
    #[test]
    fn resolves_paths_as_get_object_does() {
        let scene = parse_scene(SCENE).unwrap();
        assert_eq!(scene.find_path("/Parent"), Some(0));
        assert_eq!(scene.find_path("/Parent/ChildB"), Some(2));
        assert_eq!(
            scene.find_path("/ChildB"),
            Some(2),
            "/X finds X at any depth"
        );
        assert_eq!(scene.find_path("/Parent/Other"), None);
        assert_eq!(scene.find_path("Other"), None);
        assert_eq!(scene.resolve(Some(1), "."), Some(1));
        assert_eq!(scene.resolve(Some(1), ".."), Some(0));
        assert_eq!(scene.resolve(Some(1), "../ChildB"), Some(2));
        assert_eq!(scene.resolve(Some(0), ".."), None);
        assert_eq!(
            scene.resolve(Some(1), "Other"),
            None,
            "a bare alias finds nothing"
        );
        assert_eq!(scene.resolve(Some(1), ":"), None, "no model base above");
        assert_eq!(scene.resolve(Some(0), "./ChildA"), Some(1));
    }

    #[test]
    fn short_paths_have_a_leading_slash() {
        let scene = parse_scene(SCENE).unwrap();
        assert_eq!(scene.short_path(0), "/Parent");
        assert_eq!(scene.short_path(1), "/ChildA");
    }

    /// coppeliaSimLib@coppeliasim-v4.7.0-rev2:tt.cpp, getValueOfKey / getAllKeyValuePairs.
    #[test]
    fn extension_values_are_trimmed_nested_and_empty_is_absent() {
        let ext = " host { 127.0.0.1 } port{9000} empty{} outer{inner{7} x{1}} host{other}";
        assert_eq!(extension_value(ext, "host").as_deref(), Some("127.0.0.1"));
        assert_eq!(extension_value(ext, "port").as_deref(), Some("9000"));
        assert_eq!(extension_value(ext, "empty"), None);
        assert_eq!(extension_value(ext, "missing"), None);
        assert_eq!(
            extension_value(ext, "outer").as_deref(),
            Some("inner{7} x{1}")
        );
        assert_eq!(extension_value(ext, "inner@outer").as_deref(), Some("7"));
        assert_eq!(extension_value("broken{", "broken"), None);
    }

    /// coppeliaSimLib@coppeliasim-v4.7.0-rev2:ser.cpp, xmlGetNode_bool.
    #[test]
    fn a_switch_is_true_only_for_exactly_true() {
        for (text, expected) in [
            ("true", true),
            ("True", false),
            (" true", false),
            ("1", false),
        ] {
            let scene = parse_scene(&scene_with_simulation(&format!(
                "<switches><realTime>{text}</realTime></switches>"
            )))
            .unwrap();
            assert_eq!(scene.real_time, expected, "{text:?}");
        }
    }

    /// coppeliaSimLib@coppeliasim-v4.3.0-rev12:simulation.cpp, serialize; @coppeliasim-v4.7.0-rev2 too.
    #[test]
    fn time_step_per_version() {
        let both = scene_with_simulation(
            "<simTimeStep>0.01</simTimeStep><simulationTimeStep>0.02</simulationTimeStep><simulationMode>custom</simulationMode>",
        );
        assert_eq!(parse_scene_for(&both, 40300).unwrap().dt_s, 0.02);
        assert_eq!(parse_scene_for(&both, 40400).unwrap().dt_s, 0.01);
        let only_new = scene_with_simulation("<simTimeStep>0.01</simTimeStep>");
        assert_eq!(
            parse_scene_for(&only_new, 40300).unwrap().dt_s,
            0.05,
            "4.3 ignores simTimeStep"
        );
        let not_custom = scene_with_simulation("<simulationTimeStep>0.02</simulationTimeStep>");
        assert_eq!(
            parse_scene_for(&not_custom, 40300).unwrap().dt_s,
            0.05,
            "4.3 needs custom"
        );
        assert_eq!(parse_scene_for(&not_custom, 40700).unwrap().dt_s, 0.02);
        let preset = scene_with_simulation(
            "<simulationTimeStep>0.02</simulationTimeStep><simulationMode>10ms</simulationMode>",
        );
        assert_eq!(parse_scene_for(&preset, 40700).unwrap().dt_s, 0.01);
        let bad = parse_scene(&scene_with_simulation("<simTimeStep>fast</simTimeStep>")).unwrap();
        assert_eq!(bad.dt_s, DEFAULT_DT_S);
        assert!(
            bad.warnings.iter().any(|w| w.contains("simTimeStep")),
            "{:?}",
            bad.warnings
        );
    }

    /// coppeliaSimLib@coppeliasim-v4.7.0-rev2:sceneObjectContainer.cpp, readAndAddToSceneSimpleXmlSceneObjects.
    #[test]
    fn tag_names_as_in_the_loader_and_script_objects_from_4_7() {
        let xml = "<CoppeliaSim><filetype>simpleScene</filetype>\
            <ocTree><common><alias>Oc</alias></common></ocTree>\
            <octree><common><alias>Skipped</alias></common><dummy><common><alias>AlsoSkipped</alias></common></dummy></octree>\
            <dummy><common><alias>D0</alias><extensionString>id{3}</extensionString></common>\
              <script><common><alias>Script</alias></common><switches><parentIsProxy>true</parentIsProxy></switches>\
              <scriptText><![CDATA[\n-- s\n]]></scriptText></script></dummy></CoppeliaSim>";
        let s46 = parse_scene_for(xml, 40600).unwrap();
        let aliases: Vec<_> = s46.objects.iter().map(|o| o.alias.as_str()).collect();
        assert_eq!(aliases, ["Oc", "D0"]);
        let s47 = parse_scene_for(xml, 40700).unwrap();
        assert_eq!(s47.objects.len(), 3);
        let script = &s47.objects[2];
        assert_eq!(script.kind, "script");
        assert_eq!(script.parent, Some(1));
        assert_eq!(script.script.as_deref(), Some("-- s"));
        assert_eq!(
            script.script_kind,
            ScriptKind::Object {
                parent_is_proxy: true
            }
        );
        assert_eq!(s47.script_order(), [2]);
    }

    #[test]
    fn aliases_are_made_valid() {
        let xml = "<CoppeliaSim><filetype>simpleScene</filetype>\
            <dummy><common><alias>my dummy*2</alias></common></dummy><dummy><common/></dummy></CoppeliaSim>";
        let scene = parse_scene(xml).unwrap();
        assert_eq!(scene.objects[0].alias, "my_dummy");
        assert_eq!(scene.objects[1].alias, "Dummy");
    }

    /// coppeliaSimLib@coppeliasim-v4.7.0-rev2:ser.cpp, CSer::_readXmlHeader.
    #[test]
    fn file_type_is_required_and_exact() {
        let err = parse_scene("<CoppeliaSim><dummy/></CoppeliaSim>").unwrap_err();
        assert!(matches!(err, SceneError::MissingFileType), "{err}");
        let err = parse_scene("<CoppeliaSim><filetype> simpleScene</filetype></CoppeliaSim>")
            .unwrap_err();
        assert!(
            matches!(err, SceneError::WrongFileType { line: 1, .. }),
            "{err}"
        );
        let err = parse_scene("<CoppeliaSim>\n<dummy>").unwrap_err();
        assert!(matches!(err, SceneError::Xml { .. }), "{err}");
        let err = parse_scene("<html/>").unwrap_err();
        assert!(matches!(err, SceneError::WrongRoot { .. }), "{err}");
    }

    #[test]
    fn object_lines_are_roxmltree_rows() {
        let xml = SCENE.replace("<dummy>", "\r\n<dummy>\n");
        let doc = Document::parse(&xml).unwrap();
        let rows: Vec<u32> = doc
            .descendants()
            .filter(|n| n.has_tag_name("dummy"))
            .map(|n| line_of(&doc, n))
            .collect();
        let lines: Vec<u32> = parse_scene(&xml)
            .unwrap()
            .objects
            .iter()
            .map(|o| o.line)
            .collect();
        assert_eq!(lines, rows);
        assert_eq!(lines, [10, 17, 25, 31]);
    }

    /// `depth` dummies, each inside the previous one.
    fn nested_dummies(depth: usize) -> String {
        let open = "<dummy><common><alias>d</alias></common>".repeat(depth);
        format!(
            "<CoppeliaSim><filetype>simpleScene</filetype>{open}{}</CoppeliaSim>",
            "</dummy>".repeat(depth)
        )
    }

    #[test]
    fn object_hierarchy_up_to_the_limit_is_accepted() {
        // On a test thread's 2 MiB stack in a debug build: the walks fit at the limit.
        let scene = parse_scene(&nested_dummies(MAX_OBJECT_DEPTH)).unwrap();
        assert_eq!(scene.objects.len(), MAX_OBJECT_DEPTH);
        assert_eq!(
            scene.objects.last().unwrap().parent,
            Some(MAX_OBJECT_DEPTH - 2)
        );
        assert_eq!(scene.script_order(), Vec::<usize>::new());
    }

    #[test]
    fn deeper_object_hierarchy_is_an_error_not_a_stack_overflow() {
        let err = parse_scene(&nested_dummies(100_000)).unwrap_err();
        assert!(
            matches!(
                err,
                SceneError::TooDeep {
                    line: 1,
                    max: MAX_OBJECT_DEPTH,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn deeply_nested_elements_do_not_overflow_the_stack() {
        // roxmltree 0.20 recursed once per element level and overflowed at about 20 000
        // levels (a 140 kB file); 0.21.2 parses element content iteratively.
        let xml = format!(
            "<CoppeliaSim><filetype>simpleScene</filetype>{}{}</CoppeliaSim>",
            "<a>".repeat(200_000),
            "</a>".repeat(200_000)
        );
        assert!(parse_scene(&xml).unwrap().objects.is_empty());
    }
}
