//! Writes a [`Scene`] back as a simple XML scene: what the stand-in's `sim.saveScene` produces,
//! read back by [`super::parse`] (the shape of coppeliaSimLib@coppeliasim-v4.7.0-rev2:
//! sceneObjectContainer.cpp, `writeSimpleXmlSceneObjectTree`, reduced to what the stand-in
//! keeps: aliases, names, extension strings, model bases, scripts and the hierarchy).

use std::fmt::Write as _;

use super::generate::{push_header_and_simulation, xml_escape};
use super::parse::{Scene, ScriptKind};

/// The scene as simple XML text.
pub fn scene_to_xml(scene: &Scene) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\" ?>\n");
    xml.push_str("<CoppeliaSim>\n");
    push_header_and_simulation(&mut xml, scene.dt_s, scene.real_time, scene.pause_at_error);
    for (i, _) in scene
        .objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o.parent.is_none())
    {
        push_object(&mut xml, scene, i, 1);
    }
    xml.push_str("</CoppeliaSim>\n");
    xml
}

fn push_object(xml: &mut String, scene: &Scene, index: usize, depth: usize) {
    let o = &scene.objects[index];
    let pad = "    ".repeat(depth);
    let _ = writeln!(xml, "{pad}<{}>", o.kind);
    let _ = writeln!(xml, "{pad}    <common>");
    let _ = writeln!(xml, "{pad}        <alias>{}</alias>", xml_escape(&o.alias));
    if !o.name.is_empty() {
        let _ = writeln!(xml, "{pad}        <name>{}</name>", xml_escape(&o.name));
    }
    let _ = writeln!(
        xml,
        "{pad}        <extensionString>{}</extensionString>",
        xml_escape(&o.extension)
    );
    let _ = writeln!(
        xml,
        "{pad}        <switches><modelBase>{}</modelBase></switches>",
        o.model_base
    );
    let _ = writeln!(xml, "{pad}    </common>");
    match (o.script_kind, &o.script) {
        (ScriptKind::Object { parent_is_proxy }, text) => {
            let _ = writeln!(
                xml,
                "{pad}    <switches><enabled>{}</enabled><parentIsProxy>{parent_is_proxy}</parentIsProxy></switches>",
                text.is_some()
            );
            let _ = writeln!(
                xml,
                "{pad}    <scriptText>{}</scriptText>",
                cdata(text.as_deref().unwrap_or(""))
            );
            let _ = writeln!(xml, "{pad}    <lang>lua</lang>");
        }
        (ScriptKind::Child, Some(text)) => {
            let _ = writeln!(
                xml,
                "{pad}    <childScript><scriptText>{}</scriptText></childScript>",
                cdata(text)
            );
        }
        (ScriptKind::Child, None) => {}
    }
    for &child in &o.children {
        push_object(xml, scene, child, depth + 1);
    }
    let _ = writeln!(xml, "{pad}</{}>", o.kind);
}

/// A CDATA section holding `text` exactly: a newline on each side (the reader drops one at
/// each end), and any `]]>` split across two sections.
fn cdata(text: &str) -> String {
    format!("<![CDATA[\n{}\n]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::parse::parse_scene_for;

    #[test]
    fn a_written_scene_reads_back_the_same() {
        let xml = "<CoppeliaSim><filetype>simpleScene</filetype><xmlSerializationNb>1</xmlSerializationNb>\
            <simulation><simTimeStep>0.02</simTimeStep><switches><realTime>true</realTime></switches></simulation>\
            <dummy><common><alias>D0</alias><extensionString>id{0} host{h}</extensionString></common>\
            <childScript><scriptText><![CDATA[\nx = ']]' .. '>'\n]]></scriptText></childScript>\
            <dummy><common><alias>D1</alias></common>\
            <script><common><alias>Script</alias></common><switches><parentIsProxy>true</parentIsProxy></switches>\
            <scriptText><![CDATA[\n-- s\n]]></scriptText></script></dummy></dummy></CoppeliaSim>";
        let scene = parse_scene_for(xml, 40700).unwrap();
        let again = parse_scene_for(&scene_to_xml(&scene), 40700).unwrap();
        let strip = |s: &Scene| -> Vec<_> {
            s.objects
                .iter()
                .map(|o| {
                    (
                        o.alias.clone(),
                        o.extension.clone(),
                        o.script.clone(),
                        o.script_kind,
                        o.parent,
                    )
                })
                .collect()
        };
        assert_eq!(strip(&again), strip(&scene));
        assert_eq!((again.dt_s, again.real_time), (0.02, true));
        let tricky = "a ]]> b";
        assert!(scene_to_xml(&Scene {
            objects: vec![],
            ..scene.clone()
        })
        .contains("simpleScene"));
        assert_eq!(cdata(tricky), "<![CDATA[\na ]]]]><![CDATA[> b\n]]>");
    }
}
