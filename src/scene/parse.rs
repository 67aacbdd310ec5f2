//! Loader for CoppeliaSim's simple XML scene format (`.simscene.xml`).
//!
//! Pure: text in, [`Scene`] out. The structure follows `/work/shared/coppeliasim-notes.md` §4
//! (reconstructed from CoppeliaSim's serializer source, never loaded in a real CoppeliaSim):
//! root `<CoppeliaSim>` with `<filetype>simpleScene</filetype>`, an optional `<simulation>`
//! block, and scene objects (`<dummy>`, `<shape>`, …) whose children are nested inside them.
//! Each object has a `<common>` block (`<alias>`, `<name>`, `<extensionString>`) and an
//! optional `<childScript><scriptText><![CDATA[…]]></scriptText></childScript>`.

use roxmltree::{Document, Node};

/// Simulation time step CoppeliaSim uses when a scene gives none (notes §2), seconds.
pub const DEFAULT_DT_S: f64 = 0.05;

/// Deepest object hierarchy accepted (a root object is at depth 1). Far beyond real scenes
/// (an arm or a rope is tens to a few hundred levels); it bounds the recursive walks over
/// the hierarchy (`collect_objects`, `Scene::script_order`) for any input: without it,
/// 100 000 nested dummies (5 MB) overflow a 2 MiB thread stack and abort the process.
pub const MAX_OBJECT_DEPTH: usize = 1000;

/// Element names of CoppeliaSim scene objects that the simple XML format can hold.
const OBJECT_TAGS: &[&str] = &[
    "dummy",
    "shape",
    "joint",
    "camera",
    "light",
    "forceSensor",
    "proximitySensor",
    "visionSensor",
    "graph",
    "path",
    "mirror",
    "octree",
    "pointCloud",
    "mill",
];

/// A parsed scene.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Objects in document order (a parent always comes before its children).
    pub objects: Vec<SceneObject>,
    /// Simulation time step, seconds (`<simulation><simTimeStep>`, default 0.05).
    pub dt_s: f64,
    /// `<switches><realTime>` (default false, as in CoppeliaSim).
    pub real_time: bool,
    /// `<switches><pauseAtError>` (default true, as in CoppeliaSim).
    pub pause_at_error: bool,
}

/// One scene object.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneObject {
    /// Element name, e.g. `dummy`.
    pub kind: String,
    /// `<alias>` (falls back to `<name>` for old scenes).
    pub alias: String,
    /// `<name>`, empty when absent.
    pub name: String,
    /// `<extensionString>`, empty when absent (`key{value}` pairs).
    pub extension: String,
    /// Child script text, leading and trailing newline of the CDATA stripped.
    pub script: Option<String>,
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
    #[error("scene line {line}: <filetype> is {found:?}, expected \"simpleScene\" (the stand-in reads only simple XML scenes)")]
    WrongFileType { line: u32, found: String },
    #[error("scene line {line}: <{kind}> has neither <alias> nor <name> in <common>: add <alias>")]
    MissingAlias { line: u32, kind: String },
    #[error(
        "scene line {line}: <{kind}> is nested more than {max} objects deep: flatten the hierarchy"
    )]
    TooDeep { line: u32, kind: String, max: usize },
    #[error("scene line {line}: <{element}> is {value:?}, expected {expected}")]
    BadValue {
        line: u32,
        element: String,
        value: String,
        expected: &'static str,
    },
}

impl Scene {
    /// Indices of objects that carry a child script, in CoppeliaSim's execution order:
    /// children before parents, siblings in hierarchy order (notes §2).
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

    /// Index of the first object whose alias is `alias`.
    pub fn find_alias(&self, alias: &str) -> Option<usize> {
        self.objects.iter().position(|o| o.alias == alias)
    }

    /// Resolves a CoppeliaSim object path (`/A`, `/A/B`, or a bare alias) to an index.
    /// Each segment must be a child of the previous one; the first may be any object
    /// (CoppeliaSim's `/A` finds `A` anywhere when it is unique: we take the first).
    pub fn find_path(&self, path: &str) -> Option<usize> {
        let mut segments = path.trim_start_matches('/').split('/');
        let mut current = self.find_alias(segments.next()?)?;
        for segment in segments {
            current = *self.objects[current]
                .children
                .iter()
                .find(|&&c| self.objects[c].alias == segment)?;
        }
        Some(current)
    }
}

/// Value of `key{value}` in a CoppeliaSim extension string, as `sim.getExtensionString`
/// returns it for a key. `None` when the key is absent.
pub fn extension_value<'a>(extension: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = extension;
    while let Some(open) = rest.find('{') {
        let name = rest[..open].trim();
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        if name == key {
            return Some(&after[..close]);
        }
        rest = &after[close + 1..];
    }
    None
}

/// Parses a simple XML scene.
pub fn parse_scene(xml: &str) -> Result<Scene, SceneError> {
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
    };
    if let Some(sim) = child(root, "simulation") {
        read_simulation(&doc, sim, &mut scene)?;
    }
    collect_objects(&LineIndex::new(xml), root, None, 1, &mut scene.objects)?;
    Ok(scene)
}

fn check_file_type(doc: &Document, root: Node) -> Result<(), SceneError> {
    match child(root, "filetype") {
        Some(node) => {
            let found = node.text().unwrap_or("").trim();
            if found == "simpleScene" {
                Ok(())
            } else {
                Err(SceneError::WrongFileType {
                    line: line_of(doc, node),
                    found: found.to_owned(),
                })
            }
        }
        None => Ok(()),
    }
}

fn read_simulation(doc: &Document, sim: Node, scene: &mut Scene) -> Result<(), SceneError> {
    if let Some(node) = child(sim, "simTimeStep") {
        let dt = parse_f64(doc, node)?;
        if !(dt.is_finite() && dt > 0.0) {
            return Err(bad_value(
                doc,
                node,
                "a positive time step in seconds, e.g. 0.05",
            ));
        }
        scene.dt_s = dt;
    }
    if let Some(switches) = child(sim, "switches") {
        if let Some(node) = child(switches, "realTime") {
            scene.real_time = parse_bool(doc, node)?;
        }
        if let Some(node) = child(switches, "pauseAtError") {
            scene.pause_at_error = parse_bool(doc, node)?;
        }
    }
    Ok(())
}

fn collect_objects(
    lines: &LineIndex,
    node: Node,
    parent: Option<usize>,
    depth: usize,
    objects: &mut Vec<SceneObject>,
) -> Result<(), SceneError> {
    for element in node.children().filter(|n| n.is_element()) {
        if !OBJECT_TAGS.contains(&element.tag_name().name()) {
            continue;
        }
        if depth > MAX_OBJECT_DEPTH {
            return Err(SceneError::TooDeep {
                line: lines.line_of(element),
                kind: element.tag_name().name().to_owned(),
                max: MAX_OBJECT_DEPTH,
            });
        }
        let index = objects.len();
        objects.push(read_object(lines, element, parent)?);
        if let Some(p) = parent {
            objects[p].children.push(index);
        }
        collect_objects(lines, element, Some(index), depth + 1, objects)?;
    }
    Ok(())
}

fn read_object(
    lines: &LineIndex,
    element: Node,
    parent: Option<usize>,
) -> Result<SceneObject, SceneError> {
    let common = child(element, "common");
    let text_of = |tag: &str| {
        common
            .and_then(|c| child(c, tag))
            .and_then(|n| n.text())
            .map(|t| t.trim().to_owned())
    };
    let name = text_of("name").unwrap_or_default();
    let alias = text_of("alias")
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| name.clone());
    let kind = element.tag_name().name().to_owned();
    let line = lines.line_of(element);
    if alias.is_empty() {
        return Err(SceneError::MissingAlias { line, kind });
    }
    let script = child(element, "childScript")
        .and_then(|s| child(s, "scriptText"))
        .map(|t| strip_one_newline(&node_text(t)).to_owned());
    Ok(SceneObject {
        kind,
        alias,
        name,
        extension: text_of("extensionString").unwrap_or_default(),
        script,
        parent,
        children: Vec::new(),
        line,
    })
}

/// All text of a node (CDATA and plain text pieces concatenated).
fn node_text(node: Node) -> String {
    node.children()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

/// Strips one leading and one trailing newline, as CoppeliaSim's reader does for the
/// CDATA of `<scriptText>` (notes §4).
fn strip_one_newline(text: &str) -> &str {
    let text = text
        .strip_prefix("\r\n")
        .or_else(|| text.strip_prefix('\n'))
        .unwrap_or(text);
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == tag)
}

fn line_of(doc: &Document, node: Node) -> u32 {
    doc.text_pos_at(node.range().start).row
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

fn bad_value(doc: &Document, node: Node, expected: &'static str) -> SceneError {
    SceneError::BadValue {
        line: line_of(doc, node),
        element: node.tag_name().name().to_owned(),
        value: node.text().unwrap_or("").trim().to_owned(),
        expected,
    }
}

fn parse_f64(doc: &Document, node: Node) -> Result<f64, SceneError> {
    let text = node.text().unwrap_or("").trim();
    text.parse().map_err(|_| bad_value(doc, node, "a number"))
}

fn parse_bool(doc: &Document, node: Node) -> Result<bool, SceneError> {
    match node.text().unwrap_or("").trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad_value(doc, node, "true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CoppeliaSim>
    <filetype>simpleScene</filetype>
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

    #[test]
    fn parses_objects_hierarchy_and_switches() {
        let scene = parse_scene(SCENE).unwrap();
        assert_eq!(scene.dt_s, 0.01);
        assert!(scene.real_time);
        assert!(!scene.pause_at_error);
        let aliases: Vec<_> = scene.objects.iter().map(|o| o.alias.as_str()).collect();
        assert_eq!(aliases, ["Parent", "ChildA", "ChildB", "Other"]);
        assert_eq!(scene.objects[0].children, [1, 2]);
        assert_eq!(scene.objects[2].parent, Some(0));
        assert_eq!(scene.objects[0].name, "P");
        assert_eq!(scene.objects[0].line, 8);
    }

    #[test]
    fn strips_exactly_one_newline_around_script_text() {
        let scene = parse_scene(SCENE).unwrap();
        assert_eq!(scene.objects[0].script.as_deref(), Some("print('parent')"));
        assert_eq!(scene.objects[1].script.as_deref(), Some("-- a"));
        assert_eq!(scene.objects[2].script, None);
        assert_eq!(scene.objects[3].script.as_deref(), Some("x = 1"));
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
        assert_eq!(lines, [9, 16, 24, 30]);
    }

    #[test]
    fn finds_paths() {
        let scene = parse_scene(SCENE).unwrap();
        assert_eq!(scene.find_path("/Parent"), Some(0));
        assert_eq!(scene.find_path("/Parent/ChildB"), Some(2));
        assert_eq!(scene.find_path("Other"), Some(3));
        assert_eq!(scene.find_path("/Parent/Other"), None);
        assert_eq!(scene.find_path("/Nope"), None);
    }

    #[test]
    fn reads_extension_values() {
        let ext = "host{127.0.0.1} port{9000} empty{}";
        assert_eq!(extension_value(ext, "host"), Some("127.0.0.1"));
        assert_eq!(extension_value(ext, "port"), Some("9000"));
        assert_eq!(extension_value(ext, "empty"), Some(""));
        assert_eq!(extension_value(ext, "missing"), None);
        assert_eq!(extension_value("broken{", "broken"), None);
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_scene(
            "<CoppeliaSim>\n<simulation><simTimeStep>fast</simTimeStep></simulation></CoppeliaSim>",
        )
        .unwrap_err();
        assert!(matches!(err, SceneError::BadValue { line: 2, .. }), "{err}");
        let err = parse_scene("<CoppeliaSim>\n<dummy><common/></dummy></CoppeliaSim>").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = parse_scene("<CoppeliaSim>\n<dummy>").unwrap_err();
        assert!(matches!(err, SceneError::Xml { .. }), "{err}");
        let err = parse_scene("<html/>").unwrap_err();
        assert!(matches!(err, SceneError::WrongRoot { .. }), "{err}");
        let err = parse_scene("<CoppeliaSim><filetype>scene</filetype></CoppeliaSim>").unwrap_err();
        assert!(matches!(err, SceneError::WrongFileType { .. }), "{err}");
    }

    /// `depth` dummies, each inside the previous one.
    fn nested_dummies(depth: usize) -> String {
        let open = "<dummy><common><alias>d</alias></common>".repeat(depth);
        format!(
            "<CoppeliaSim>{open}{}</CoppeliaSim>",
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
            "<CoppeliaSim>{}{}</CoppeliaSim>",
            "<a>".repeat(200_000),
            "</a>".repeat(200_000)
        );
        assert!(parse_scene(&xml).unwrap().objects.is_empty());
    }

    #[test]
    fn rejects_non_positive_time_step() {
        let err = parse_scene(
            "<CoppeliaSim><simulation><simTimeStep>0</simTimeStep></simulation></CoppeliaSim>",
        )
        .unwrap_err();
        assert!(matches!(err, SceneError::BadValue { .. }), "{err}");
    }
}
