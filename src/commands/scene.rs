//! `coppelia-bridge scene`: writes the simple-XML scene with N dummies, or plans building the
//! same scene inside a running CoppeliaSim through the remote API.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};

use crate::remote_api::Client;
use crate::scene::remote_build::{
    build_plan, execute_plan, Arg, ScriptApi, Step, SCRIPTSTRINGPARAM_TEXT_4_7,
};
use crate::scene::{try_generate_scene, SceneOptions, Transport};

/// Flags of `coppelia-bridge scene`.
#[derive(Debug, clap::Args)]
pub struct SceneArgs {
    /// Number of dummies (aliases Dummy0.., ids 0..).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub dummies: u32,
    /// Bridge host the scripts send to (written as host{} in each extension string).
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub host: String,
    /// Bridge port the scripts send to (port{}).
    #[arg(long, default_value_t = 8888, value_name = "PORT")]
    pub port: u16,
    /// Transport from the scripts to the bridge.
    #[arg(long, value_enum, default_value_t = Transport::Udp)]
    pub transport: Transport,
    /// Ask the bridge to echo every STAMP (round-trip time in the scripts).
    #[arg(long)]
    pub echo: bool,
    /// Send the classroom notebook's legacy format (ASCII id, then float64 times; UDP only).
    #[arg(long, conflicts_with_all = ["echo", "transport"])]
    pub legacy: bool,
    /// Simulation time step (0.05, 50ms, 10ms).
    #[arg(long, default_value = "0.05", value_name = "SECONDS", value_parser = crate::cli::parse::time_step)]
    pub dt: f64,
    /// Turn on CoppeliaSim's real-time mode in the scene (off: run as fast as possible).
    #[arg(long)]
    pub real_time: bool,
    /// Where to write the .simscene.xml file (written atomically: temp file + rename).
    #[arg(long, value_name = "FILE", required_unless_present = "build_remote")]
    pub out: Option<PathBuf>,
    /// Build the dummies and scripts inside a running CoppeliaSim (4.6+) instead, read them
    /// back, and save the scene. Each dummy's settings travel in its script's first line.
    #[arg(long, requires = "save", conflicts_with = "out")]
    pub build_remote: bool,
    #[command(flatten)]
    pub remote: crate::commands::probe::RemoteArgs,
    /// Scene path to save to, on the machine running CoppeliaSim (with --build-remote).
    #[arg(long, value_name = "PATH")]
    pub save: Option<String>,
    /// With --build-remote: print the planned remote API calls instead of running them.
    #[arg(long, requires = "build_remote")]
    pub print_plan: bool,
    /// With --build-remote --print-plan: plan for CoppeliaSim 4.6 (sim.addScript) with this
    /// value of sim.scriptstringparam_text; default plans for 4.7+ (sim.createScript).
    #[arg(long, value_name = "VALUE", requires = "print_plan")]
    pub add_script_text_param: Option<i64>,
}

impl SceneArgs {
    fn options(&self) -> SceneOptions {
        SceneOptions {
            dummies: self.dummies,
            host: self.host.clone(),
            port: self.port,
            transport: self.transport,
            echo: self.echo,
            legacy: self.legacy,
            dt_s: self.dt,
            real_time: self.real_time,
            script: crate::lua::SCRIPT.to_owned(),
        }
    }
}

/// Runs `coppelia-bridge scene`.
pub fn execute(args: SceneArgs) -> anyhow::Result<ExitCode> {
    if args.build_remote {
        return build_remote(&args);
    }
    let Some(out) = &args.out else {
        bail!("--out FILE is required (or use --build-remote --save PATH)");
    };
    let xml = try_generate_scene(&args.options())?;
    write_atomically(out, xml.as_bytes())?;
    eprintln!(
        "wrote {} ({} dummies); load it with `coppeliaSim.sh -h -s0 {}` or File > Open scene",
        out.display(),
        args.dummies,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn build_remote(args: &SceneArgs) -> anyhow::Result<ExitCode> {
    let save = args
        .save
        .as_deref()
        .context("--build-remote needs --save PATH")?;
    if args.print_plan {
        let api = match args.add_script_text_param {
            Some(v) => ScriptApi::AddScript {
                scriptstringparam_text: v,
            },
            None => ScriptApi::CreateScript {
                scriptstringparam_text: SCRIPTSTRINGPARAM_TEXT_4_7,
            },
        };
        let plan: String = build_plan(&args.options(), api, save)?
            .iter()
            .map(|step| describe(step) + "\n")
            .collect();
        super::print_for_reader(plan.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut client = Client::connect(&args.remote.remote, args.remote.client_config())?;
    let version = client.program_version()?;
    // Setting and reading back a script's text needs sim.scriptstringparam_text, which
    // changed from 2 (4.6) to 10110 (4.7.0-rev0): ask the server.
    let text_param = sim_constant(&mut client, "scriptstringparam_text")?;
    let api = ScriptApi::for_version(version.raw, text_param)?;
    let plan = build_plan(&args.options(), api, save)?;
    execute_plan(&plan, |func, a| client.call(func, a)).map_err(|e| {
        anyhow::anyhow!(
            "building the scene in CoppeliaSim {version} at {}: {e}",
            args.remote.remote
        )
    })?;
    let _ = client.close();
    eprintln!(
        "built {} dummies with their scripts in CoppeliaSim {version} at {}, read them back, and saved the scene to {save}",
        args.dummies, args.remote.remote
    );
    Ok(ExitCode::SUCCESS)
}

/// A `sim.*` constant as the server describes it (`zmqRemoteApi.info('sim')`, notes §5).
fn sim_constant<T: crate::remote_api::Transport>(
    client: &mut Client<T>,
    name: &str,
) -> anyhow::Result<Option<i64>> {
    use ciborium::Value;
    let ret = client.call("zmqRemoteApi.info", vec![Value::Text("sim".into())])?;
    let Some(Value::Map(entries)) = ret.into_iter().next() else {
        return Ok(None);
    };
    let found = entries.into_iter().find(|(k, _)| k.as_text() == Some(name));
    let Some((_, Value::Map(desc))) = found else {
        return Ok(None);
    };
    Ok(desc
        .into_iter()
        .find(|(k, _)| k.as_text() == Some("const"))
        .and_then(|(_, v)| v.as_integer())
        .and_then(|i| i64::try_from(i).ok()))
}

/// One line per call, script text shortened.
fn describe(step: &Step) -> String {
    let args: Vec<String> = step
        .args
        .iter()
        .map(|a| match a {
            Arg::Int(i) => i.to_string(),
            Arg::Float(f) => f.to_string(),
            Arg::Bool(b) => b.to_string(),
            Arg::Text(s) if s.len() > 60 => format!("<text, {} bytes>", s.len()),
            Arg::Text(s) => format!("{s:?}"),
            Arg::Floats(v) => format!("{v:?}"),
            Arg::HandleOf(i) => format!("<handle from call {i}>"),
        })
        .collect();
    format!("{}({})", step.func, args.join(", "))
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`, so readers
/// never see a half-written scene.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .with_context(|| format!("--out {}: not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_then_rename(&tmp, path, bytes);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = fs::File::create(tmp).with_context(|| {
        format!(
            "cannot create {} (writing the scene): does the directory exist and is it writable?",
            tmp.display()
        )
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}: disk full?", tmp.display()))?;
    fs::rename(tmp, path).with_context(|| {
        format!(
            "cannot rename {} to {}: is the target a directory or read-only?",
            tmp.display(),
            path.display()
        )
    })
}
