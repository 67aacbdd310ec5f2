//! The simple-XML scene (`.simscene.xml`) with N dummies, each carrying the full child script.
//!
//! This is the ONE place that knows the format. Its structure was reconstructed from
//! CoppeliaSim's serializer source (coppeliasim-notes §4), never loaded in a real CoppeliaSim:
//! if a version rejects it, fix it here (and regenerate `scenes/`), or build the scene through
//! the remote API instead (`super::remote_build`).

use std::fmt::Write as _;

use thiserror::Error;

/// How the dummies reach the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Transport {
    /// One datagram per message (the notebook's transport).
    #[default]
    Udp,
    /// `<u32 length LE><payload>` frames over one connection per dummy.
    Tcp,
}

/// Everything the generated scene depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneOptions {
    /// Number of dummies, aliases `Dummy0`..`Dummy{N-1}`, ids 0..N-1.
    pub dummies: u32,
    /// Bridge host written into each extension string (`host{}`).
    pub host: String,
    /// Bridge port (`port{}`).
    pub port: u16,
    pub transport: Transport,
    /// Ask the bridge for an ECHO per STAMP (`echo{1}`).
    pub echo: bool,
    /// Send the notebook's legacy format (`legacy{1}`).
    pub legacy: bool,
    /// Simulation time step, s.
    pub dt_s: f64,
    /// CoppeliaSim's real-time mode switch.
    pub real_time: bool,
    /// Child script text embedded in every dummy.
    pub script: String,
}

impl Default for SceneOptions {
    /// The notebook's setup: 4 dummies, UDP to 127.0.0.1:8888, dt 50 ms, the shipped script.
    fn default() -> Self {
        Self {
            dummies: 4,
            host: "127.0.0.1".to_owned(),
            port: 8888,
            transport: Transport::Udp,
            echo: false,
            legacy: false,
            dt_s: 0.05,
            real_time: false,
            script: crate::lua::SCRIPT.to_owned(),
        }
    }
}

/// Smallest and largest accepted time step, s.
pub const DT_RANGE_S: (f64, f64) = (0.0001, 10.0);
/// Largest number of dummies a scene may hold.
pub const MAX_DUMMIES: u32 = 10_000;
/// Distance between neighbouring dummies along x, m (only so they don't overlap in the GUI).
const SPACING_M: f64 = 0.1;
/// Dummy size, m (CoppeliaSim's default, 0.01, is hard to see).
const DUMMY_SIZE_M: f64 = 0.05;

/// Options that cannot make a loadable scene.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SceneError {
    #[error("the script text contains \"]]>\", which would end its CDATA section: remove or split that sequence (e.g. write \"]] >\" inside a Lua string)")]
    ScriptEndsCdata,
    #[error("--dummies {0} is out of range: use 1..={MAX_DUMMIES}")]
    Dummies(u32),
    #[error("--dt {0} s is out of range: use a finite step between {min} and {max} s", min = DT_RANGE_S.0, max = DT_RANGE_S.1)]
    Dt(f64),
    #[error("--host {0:?} is not usable in an extension string: use a host name or IP address (letters, digits, '.', ':', '-', '_')")]
    Host(String),
    #[error("--port 0 is not a port the script can send to: use 1..=65535")]
    Port,
}

/// Checks that `opts` give a scene CoppeliaSim can load and the script can parse.
pub fn validate(opts: &SceneOptions) -> Result<(), SceneError> {
    if opts.script.contains("]]>") {
        return Err(SceneError::ScriptEndsCdata);
    }
    if opts.dummies == 0 || opts.dummies > MAX_DUMMIES {
        return Err(SceneError::Dummies(opts.dummies));
    }
    if !(opts.dt_s.is_finite() && (DT_RANGE_S.0..=DT_RANGE_S.1).contains(&opts.dt_s)) {
        return Err(SceneError::Dt(opts.dt_s));
    }
    if !is_plain_host(&opts.host) {
        return Err(SceneError::Host(opts.host.clone()));
    }
    if opts.port == 0 {
        return Err(SceneError::Port);
    }
    Ok(())
}

/// Host names and IPv4/IPv6 literals; no braces or spaces, which would break `key{value}`.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'_'))
}

/// The extension string of dummy `index`: the script's per-dummy settings.
pub fn extension_string(opts: &SceneOptions, index: u32) -> String {
    let mut s = format!("id{{{index}}} host{{{}}} port{{{}}}", opts.host, opts.port);
    if opts.transport == Transport::Tcp {
        s.push_str(" transport{tcp}");
    }
    if opts.echo {
        s.push_str(" echo{1}");
    }
    if opts.legacy {
        s.push_str(" legacy{1}");
    }
    s
}

/// Alias of dummy `index` (the script also derives the id from its digits).
pub fn alias(index: u32) -> String {
    format!("Dummy{index}")
}

/// The scene, or why `opts` cannot make one.
pub fn try_generate_scene(opts: &SceneOptions) -> Result<String, SceneError> {
    validate(opts)?;
    let mut xml = String::with_capacity((opts.script.len() + 600) * opts.dummies as usize + 800);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\" ?>\n");
    xml.push_str(
        "<!-- Generated by `coppelia-bridge scene`: edit the generator (src/scene/generate.rs), not this file. -->\n",
    );
    // Both required by the manual's format; the loader rejects a file without <filetype> and
    // logs a missing <xmlSerializationNb> (coppeliaSimLib@coppeliasim-v4.7.0-rev2:ser.cpp,
    // CSer::_readXmlHeader).
    xml.push_str("<CoppeliaSim>\n");
    push_simulation(&mut xml, opts);
    for index in 0..opts.dummies {
        push_dummy(&mut xml, opts, index);
    }
    xml.push_str("</CoppeliaSim>\n");
    Ok(xml)
}

/// The scene for `opts`. Pure.
///
/// # Panics
/// If `opts` are invalid (see [`validate`]); in particular the script must not contain `]]>`.
/// The shipped script is checked by a test; use [`try_generate_scene`] for outside input.
pub fn generate_scene(opts: &SceneOptions) -> String {
    match try_generate_scene(opts) {
        Ok(xml) => xml,
        Err(e) => panic!("generate_scene: {e}"),
    }
}

/// `<simulation>`: the time step in both spellings, since 4.4+ read `<simTimeStep>` (which wins)
/// while 4.3 reads only `<simulationTimeStep>`, and only in `custom` mode
/// (coppeliaSimLib@coppeliasim-v4.3.0-rev12:simulation.cpp, CSimulation::serialize; the same
/// function at coppeliasim-v4.7.0-rev2 lets `<simTimeStep>` override the mode). Real-time and
/// pause-at-error switches (notes §4: a script error must not pause the run, so pauseAtError is
/// always false).
fn push_simulation(xml: &mut String, opts: &SceneOptions) {
    push_header_and_simulation(xml, opts.dt_s, opts.real_time, false);
}

/// `<filetype>`, `<xmlSerializationNb>` and `<simulation>` of a simple XML scene (after the
/// `<CoppeliaSim>` line): shared by the generator and the stand-in's `sim.saveScene`.
pub(crate) fn push_header_and_simulation(
    xml: &mut String,
    dt_s: f64,
    real_time: bool,
    pause_at_error: bool,
) {
    xml.push_str("    <filetype>simpleScene</filetype>\n");
    xml.push_str("    <xmlSerializationNb>1</xmlSerializationNb>\n");
    xml.push_str("    <simulation>\n");
    let _ = writeln!(xml, "        <simTimeStep>{dt_s}</simTimeStep>");
    let _ = writeln!(
        xml,
        "        <simulationTimeStep>{dt_s}</simulationTimeStep>"
    );
    xml.push_str("        <simulationMode>custom</simulationMode>\n");
    xml.push_str("        <switches>\n");
    let _ = writeln!(xml, "            <realTime>{real_time}</realTime>");
    let _ = writeln!(
        xml,
        "            <pauseAtError>{pause_at_error}</pauseAtError>"
    );
    xml.push_str("        </switches>\n    </simulation>\n");
}

fn push_dummy(xml: &mut String, opts: &SceneOptions, index: u32) {
    let name = alias(index);
    let x = f64::from(index) * SPACING_M;
    xml.push_str("    <dummy>\n        <common>\n");
    let _ = writeln!(xml, "            <alias>{name}</alias>");
    let _ = writeln!(xml, "            <name>{name}</name>");
    let _ = writeln!(xml, "            <altName>{name}</altName>");
    xml.push_str("            <localFrame>\n");
    let _ = writeln!(xml, "                <position>{x} 0 0</position>");
    xml.push_str("                <euler>0 0 0</euler>\n            </localFrame>\n");
    let ext = xml_escape(&extension_string(opts, index));
    let _ = writeln!(xml, "            <extensionString>{ext}</extensionString>");
    xml.push_str("        </common>\n");
    let _ = writeln!(xml, "        <size>{DUMMY_SIZE_M}</size>");
    // The reader strips one leading and one trailing newline inside the CDATA (notes §4), so
    // the script text sits on lines of its own and comes back byte for byte.
    xml.push_str("        <childScript>\n            <scriptText><![CDATA[\n");
    xml.push_str(&opts.script);
    xml.push_str("\n]]></scriptText>\n        </childScript>\n    </dummy>\n");
}

/// Escapes text content (validated hosts never need it; this keeps the file well-formed anyway).
pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SceneOptions {
        SceneOptions {
            script: "function sysCall_init() end".to_owned(),
            ..SceneOptions::default()
        }
    }

    #[test]
    fn shipped_script_fits_in_cdata() {
        assert!(!crate::lua::SCRIPT.contains("]]>"));
        assert!(try_generate_scene(&SceneOptions::default()).is_ok());
    }

    #[test]
    fn script_ending_cdata_is_rejected() {
        let bad = SceneOptions {
            script: "local s = 'a]]>b'".to_owned(),
            ..opts()
        };
        assert_eq!(try_generate_scene(&bad), Err(SceneError::ScriptEndsCdata));
    }

    #[test]
    #[should_panic(expected = "]]>")]
    fn generate_scene_asserts_on_cdata_end() {
        generate_scene(&SceneOptions {
            script: "]]>".to_owned(),
            ..opts()
        });
    }

    #[test]
    fn extension_string_carries_every_setting() {
        let o = SceneOptions {
            host: "10.0.0.5".to_owned(),
            port: 9000,
            transport: Transport::Tcp,
            echo: true,
            legacy: false,
            ..opts()
        };
        assert_eq!(
            extension_string(&o, 3),
            "id{3} host{10.0.0.5} port{9000} transport{tcp} echo{1}"
        );
        let legacy = SceneOptions {
            legacy: true,
            ..opts()
        };
        assert_eq!(
            extension_string(&legacy, 0),
            "id{0} host{127.0.0.1} port{8888} legacy{1}"
        );
    }

    #[test]
    fn bad_options_are_rejected_with_the_flag_named() {
        let cases = [
            (
                SceneOptions {
                    dummies: 0,
                    ..opts()
                },
                "--dummies",
            ),
            (
                SceneOptions {
                    dt_s: 0.0,
                    ..opts()
                },
                "--dt",
            ),
            (
                SceneOptions {
                    dt_s: f64::NAN,
                    ..opts()
                },
                "--dt",
            ),
            (
                SceneOptions {
                    host: "a b".into(),
                    ..opts()
                },
                "--host",
            ),
            (
                SceneOptions {
                    host: "h}x{".into(),
                    ..opts()
                },
                "--host",
            ),
            (
                SceneOptions {
                    host: String::new(),
                    ..opts()
                },
                "--host",
            ),
            (SceneOptions { port: 0, ..opts() }, "--port"),
        ];
        for (o, flag) in cases {
            let err = try_generate_scene(&o).unwrap_err().to_string();
            assert!(err.contains(flag), "{err:?} should name {flag}");
        }
    }

    #[test]
    fn scene_structure_follows_the_simple_xml_format() {
        let xml = generate_scene(&SceneOptions {
            dummies: 2,
            real_time: true,
            ..opts()
        });
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "CoppeliaSim");
        let child_text = |parent: roxmltree::Node, tag: &str| {
            parent
                .children()
                .find(|n| n.has_tag_name(tag))
                .and_then(|n| n.text())
                .map(str::to_owned)
        };
        assert_eq!(child_text(root, "filetype").as_deref(), Some("simpleScene"));
        let sim = root
            .children()
            .find(|n| n.has_tag_name("simulation"))
            .unwrap();
        assert_eq!(child_text(sim, "simTimeStep").as_deref(), Some("0.05"));
        assert_eq!(child_text(sim, "simulationMode").as_deref(), Some("custom"));
        assert_eq!(
            child_text(sim, "simulationTimeStep").as_deref(),
            Some("0.05")
        );
        assert_eq!(child_text(root, "xmlSerializationNb").as_deref(), Some("1"));
        let switches = sim.children().find(|n| n.has_tag_name("switches")).unwrap();
        assert_eq!(child_text(switches, "realTime").as_deref(), Some("true"));
        assert_eq!(
            child_text(switches, "pauseAtError").as_deref(),
            Some("false")
        );
        let dummies: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name("dummy"))
            .collect();
        assert_eq!(dummies.len(), 2);
        for (i, d) in dummies.iter().enumerate() {
            let common = d.children().find(|n| n.has_tag_name("common")).unwrap();
            assert_eq!(child_text(common, "alias"), Some(format!("Dummy{i}")));
            let ext = child_text(common, "extensionString").unwrap();
            assert!(ext.starts_with(&format!("id{{{i}}} ")), "{ext}");
            let script = d
                .descendants()
                .find(|n| n.has_tag_name("scriptText"))
                .unwrap();
            assert_eq!(script.text(), Some("\nfunction sysCall_init() end\n"));
        }
    }

    /// 4.3 reads only simulationTimeStep + simulationMode custom
    /// (coppeliaSimLib@coppeliasim-v4.3.0-rev12:simulation.cpp, CSimulation::serialize).
    #[test]
    fn every_version_reads_the_generated_time_step() {
        let xml = generate_scene(&SceneOptions {
            dt_s: 0.01,
            ..opts()
        });
        for version in [40300, 40400, 40600, 40700, 41000] {
            let scene = crate::scene::parse::parse_scene_for(&xml, version).unwrap();
            assert_eq!(scene.dt_s, 0.01, "version {version}");
            assert!(scene.warnings.is_empty(), "{:?}", scene.warnings);
        }
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(generate_scene(&opts()), generate_scene(&opts()));
    }
}
