//! The scene-building functions a remote client can call (`scene --build-remote` uses them):
//! objects and scripts created, renamed, re-parented, read back (pure: the scene in memory).
//!
//! Each follows the C function of coppeliaSimLib@coppeliasim-v4.7.0-rev2:luaScriptFunctions.cpp
//! of the same name; legacy child scripts (`sim.addScript`, still present in 4.10) have handles
//! of their own, script objects (`sim.createScript`, 4.7+) are scene objects.

use crate::scene::parse::{Scene, SceneObject, ScriptKind};

/// First handle given to a legacy child script (CoppeliaSim numbers them apart from scene
/// objects; the exact numbers differ).
pub const LEGACY_SCRIPT_BASE: i64 = 1_000_000;

/// A legacy child script made by `sim.addScript`.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyScript {
    pub text: String,
    /// Scene object it is associated with (`sim.associateScriptWithObject`).
    pub object: Option<usize>,
}

/// Handle of scene object `index` (handles start at 1; CoppeliaSim's differ).
pub fn handle_of(index: usize) -> i64 {
    index as i64 + 1
}

fn index_of(scene: &Scene, handle: i64) -> Result<usize, String> {
    usize::try_from(handle - 1)
        .ok()
        .filter(|&i| i < scene.objects.len())
        .ok_or_else(|| format!("object does not exist: handle {handle}"))
}

fn new_object(kind: &str, alias: &str) -> SceneObject {
    SceneObject {
        kind: kind.to_owned(),
        alias: alias.to_owned(),
        name: String::new(),
        extension: String::new(),
        script: None,
        script_kind: ScriptKind::Child,
        model_base: false,
        parent: None,
        children: Vec::new(),
        line: 0,
    }
}

/// `sim.createDummy(size)`: a new top-level dummy, alias `Dummy`.
pub fn create_dummy(scene: &mut Scene) -> i64 {
    scene.objects.push(new_object("dummy", "Dummy"));
    handle_of(scene.objects.len() - 1)
}

/// `sim.createScript(type, text, ...)`: a new top-level script object, alias `Script`.
pub fn create_script(scene: &mut Scene, script_type: i64, text: &str) -> Result<i64, String> {
    if script_type != 1 {
        return Err(format!(
            "sim.createScript: script type {script_type} is not sim.scripttype_simulation (1), the only type the stand-in runs"
        ));
    }
    let mut object = new_object("script", "Script");
    object.script = Some(text.to_owned());
    object.script_kind = ScriptKind::Object {
        parent_is_proxy: false,
    };
    scene.objects.push(object);
    Ok(handle_of(scene.objects.len() - 1))
}

/// `sim.setObjectAlias(handle, alias)`: the alias must be valid (`[A-Za-z0-9_]+`).
pub fn set_alias(scene: &mut Scene, handle: i64, alias: &str) -> Result<(), String> {
    let i = index_of(scene, handle)?;
    let valid = !alias.is_empty()
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(format!("illegal alias: {alias:?}"));
    }
    scene.objects[i].alias = alias.to_owned();
    Ok(())
}

/// `sim.setObjectParent(object, parent, keepInPlace)`: parent -1 makes it top-level.
pub fn set_parent(scene: &mut Scene, handle: i64, parent: i64) -> Result<(), String> {
    let i = index_of(scene, handle)?;
    let p = if parent == -1 {
        None
    } else {
        Some(index_of(scene, parent)?)
    };
    let mut up = p;
    while let Some(a) = up {
        if a == i {
            return Err(
                "sim.setObjectParent: the parent is the object or one of its children".into(),
            );
        }
        up = scene.objects[a].parent;
    }
    if let Some(old) = scene.objects[i].parent {
        scene.objects[old].children.retain(|&c| c != i);
    }
    scene.objects[i].parent = p;
    if let Some(p) = p {
        scene.objects[p].children.push(i);
    }
    Ok(())
}

/// `sim.getObjectParent(handle)`: -1 for a top-level object.
pub fn parent_of(scene: &Scene, handle: i64) -> Result<i64, String> {
    let i = index_of(scene, handle)?;
    Ok(scene.objects[i].parent.map_or(-1, handle_of))
}

/// The legacy scripts of one stand-in and their text.
#[derive(Debug, Clone, Default)]
pub struct LegacyScripts {
    scripts: Vec<LegacyScript>,
}

impl LegacyScripts {
    /// `sim.addScript(type)`: only child scripts (type 1).
    pub fn add(&mut self, script_type: i64) -> Result<i64, String> {
        if script_type != 1 {
            return Err(format!(
                "sim.addScript: script type {script_type} is not sim.scripttype_childscript (1), the only type the stand-in runs"
            ));
        }
        self.scripts.push(LegacyScript {
            text: String::new(),
            object: None,
        });
        Ok(LEGACY_SCRIPT_BASE + self.scripts.len() as i64 - 1)
    }

    fn get_mut(&mut self, handle: i64) -> Result<&mut LegacyScript, String> {
        usize::try_from(handle - LEGACY_SCRIPT_BASE)
            .ok()
            .and_then(|i| self.scripts.get_mut(i))
            .ok_or_else(|| format!("script does not exist: handle {handle}"))
    }

    /// `sim.associateScriptWithObject(script, object)`: the object runs it as its child script.
    pub fn associate(&mut self, scene: &mut Scene, script: i64, object: i64) -> Result<(), String> {
        let i = index_of(scene, object)?;
        let s = self.get_mut(script)?;
        if scene.objects[i].script.is_some() {
            return Err(format!("object {object} already has a child script"));
        }
        s.object = Some(i);
        scene.objects[i].script = Some(s.text.clone());
        scene.objects[i].script_kind = ScriptKind::Child;
        Ok(())
    }

    /// `sim.setScriptStringParam(script, sim.scriptstringparam_text, text)` for a legacy
    /// script or a script object.
    pub fn set_text(&mut self, scene: &mut Scene, handle: i64, text: &str) -> Result<(), String> {
        if handle >= LEGACY_SCRIPT_BASE {
            let s = self.get_mut(handle)?;
            s.text = text.to_owned();
            if let Some(i) = s.object {
                scene.objects[i].script = Some(text.to_owned());
            }
            return Ok(());
        }
        let i = script_object(scene, handle)?;
        scene.objects[i].script = Some(text.to_owned());
        Ok(())
    }

    /// `sim.getScriptStringParam(script, sim.scriptstringparam_text)`.
    pub fn text(&mut self, scene: &Scene, handle: i64) -> Result<String, String> {
        if handle >= LEGACY_SCRIPT_BASE {
            return Ok(self.get_mut(handle)?.text.clone());
        }
        let i = script_object(scene, handle)?;
        Ok(scene.objects[i].script.clone().unwrap_or_default())
    }

    /// Forgets every legacy script (`sim.loadScene` replaces the scene).
    pub fn clear(&mut self) {
        self.scripts.clear();
    }
}

fn script_object(scene: &Scene, handle: i64) -> Result<usize, String> {
    let i = index_of(scene, handle)?;
    if scene.objects[i].kind != "script" {
        return Err(format!("handle {handle} is not a script"));
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::parse::parse_scene;

    fn empty() -> Scene {
        parse_scene("<CoppeliaSim><filetype>simpleScene</filetype></CoppeliaSim>").unwrap()
    }

    #[test]
    fn legacy_scripts_attach_to_dummies() {
        let mut scene = empty();
        let mut scripts = LegacyScripts::default();
        let d = create_dummy(&mut scene);
        set_alias(&mut scene, d, "Dummy3").unwrap();
        let s = scripts.add(1).unwrap();
        scripts.set_text(&mut scene, s, "-- x").unwrap();
        scripts.associate(&mut scene, s, d).unwrap();
        assert_eq!(scene.objects[0].script.as_deref(), Some("-- x"));
        assert_eq!(scripts.text(&scene, s).unwrap(), "-- x");
        assert!(set_alias(&mut scene, d, "bad alias").is_err());
        assert!(scripts.add(2).is_err());
    }

    #[test]
    fn script_objects_hang_under_their_dummy() {
        let mut scene = empty();
        let mut scripts = LegacyScripts::default();
        let d = create_dummy(&mut scene);
        let s = create_script(&mut scene, 1, "-- y").unwrap();
        set_parent(&mut scene, s, d).unwrap();
        assert_eq!(parent_of(&scene, s).unwrap(), d);
        assert_eq!(scene.objects[0].children, [1]);
        assert_eq!(scripts.text(&scene, s).unwrap(), "-- y");
        assert!(set_parent(&mut scene, d, s).is_err(), "no cycles");
        set_parent(&mut scene, s, -1).unwrap();
        assert!(scene.objects[0].children.is_empty());
    }
}
