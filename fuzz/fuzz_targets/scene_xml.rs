//! A simple-XML scene file, as the stand-in loads it (`parse_scene`), then the queries the
//! stand-in makes of it (script order, object paths, extension strings). Input bytes that
//! are not UTF-8 are read lossily, as a file with a bad byte would be. Checks, beyond "no
//! panic" (stack overflow included):
//! - an accepted scene is consistent: positive finite time step, every alias non-empty,
//!   parents before children, `parent`/`children` links agreeing both ways, lines ≥ 1;
//! - `script_order` lists every scripted object once, children before their parents;
//! - `find_path("/alias")` and `find_alias` find the first object with that alias, and a
//!   child's `/parent/child` path resolves when the parent's alias is unique so far;
//! - `extension_value` returns a piece of the extension string;
//! - a rejected scene gives an error that renders to a message.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run scene_xml` (or `scripts/fuzz.sh`).
#![no_main]

use coppelia_bridge::scene::parse::{extension_value, parse_scene, Scene, SceneError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let xml = String::from_utf8_lossy(data);
    match parse_scene(&xml) {
        Ok(scene) => check_scene(&scene),
        Err(e) => check_error(&e),
    }
});

fn check_scene(scene: &Scene) {
    assert!(scene.dt_s.is_finite() && scene.dt_s > 0.0);
    let n = scene.objects.len();
    for (i, o) in scene.objects.iter().enumerate() {
        assert!(!o.alias.is_empty());
        assert_eq!(o.alias, o.alias.trim());
        assert!(o.line >= 1);
        if let Some(p) = o.parent {
            assert!(p < i, "parent {p} after child {i}");
            assert!(scene.objects[p].children.contains(&i));
        }
        for &c in &o.children {
            assert!(c > i && c < n);
            assert_eq!(scene.objects[c].parent, Some(i));
        }
        // Queries scan the object list: bounded so a big scene stays a fast input.
        if i < 64 {
            check_queries(scene, i);
        }
    }
    let order = scene.script_order();
    let mut position = vec![None; n];
    for (pos, &i) in order.iter().enumerate() {
        assert!(scene.objects[i].script.is_some());
        assert!(
            position[i].is_none(),
            "object {i} twice in the script order"
        );
        position[i] = Some(pos);
    }
    let scripted = scene.objects.iter().filter(|o| o.script.is_some()).count();
    assert_eq!(order.len(), scripted);
    // Children before parents: checked on each scripted pair (object, nearest scripted
    // ancestor), which orders every ancestor by transitivity.
    for (i, o) in scene.objects.iter().enumerate() {
        let Some(mine) = position[i] else { continue };
        let mut up = o.parent;
        while let Some(p) = up {
            if let Some(theirs) = position[p] {
                assert!(mine < theirs, "parent {p} runs before child {i}");
                break;
            }
            up = scene.objects[p].parent;
        }
    }
}

fn check_queries(scene: &Scene, i: usize) {
    let o = &scene.objects[i];
    // Relative paths as a script on object `i` uses them.
    assert_eq!(scene.resolve(Some(i), "."), Some(i));
    assert_eq!(scene.resolve(Some(i), ".."), o.parent);
    // A path cannot name an alias containing `/`.
    if !o.alias.contains('/') && !o.alias.is_empty() {
        let first = scene
            .find_path(&format!("/{}", o.alias))
            .expect("own alias not found from the root");
        assert_eq!(scene.objects[first].alias, o.alias);
        if let Some(p) = o.parent {
            let parent = &scene.objects[p].alias;
            if !parent.contains('/') && scene.find_path(&format!("/{parent}")) == Some(p) {
                let found = scene
                    .find_path(&format!("/{parent}/{}", o.alias))
                    .expect("child path not found");
                assert_eq!(scene.objects[found].alias, o.alias);
            }
        }
    }
    // Keys as the Lua script asks for them, and the object's own text as a key.
    for key in ["id", "host", "port", o.alias.as_str()] {
        if let Some(v) = extension_value(&o.extension, key) {
            // A value is a trimmed, non-empty piece of the extension string (nested keys
            // `a@b` included): never text the string does not hold.
            assert!(!v.is_empty());
            assert!(
                o.extension.contains(v.as_str()),
                "{v:?} not in {:?}",
                o.extension
            );
        }
    }
}

fn check_error(e: &SceneError) {
    // Messages are what the user sees; the variants are left to the parser's own tests.
    assert!(!e.to_string().is_empty());
}
