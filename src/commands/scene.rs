//! `coppelia-bridge scene`: writes the simple-XML scene with N dummies, or plans building the
//! same scene inside a running CoppeliaSim through the remote API.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};

use crate::scene::remote_build::{build_plan, Arg, ScriptApi, Step};
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
    /// Simulation time step, seconds.
    #[arg(long, default_value_t = 0.05, value_name = "SECONDS")]
    pub dt: f64,
    /// Turn on CoppeliaSim's real-time mode in the scene (off: run as fast as possible).
    #[arg(long)]
    pub real_time: bool,
    /// Where to write the .simscene.xml file (written atomically: temp file + rename).
    #[arg(long, value_name = "FILE", required_unless_present = "build_remote")]
    pub out: Option<PathBuf>,
    /// Build the dummies and scripts inside a running CoppeliaSim instead, and save the scene.
    #[arg(long, requires = "save", conflicts_with = "out")]
    pub build_remote: bool,
    /// Remote API endpoint of that CoppeliaSim.
    #[arg(long, default_value = "tcp://127.0.0.1:23000", value_name = "ENDPOINT")]
    pub remote: String,
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
    let api = match args.add_script_text_param {
        Some(v) => ScriptApi::AddScript {
            scriptstringparam_text: v,
        },
        None => ScriptApi::CreateScript,
    };
    let plan = build_plan(&args.options(), api, save)?;
    if args.print_plan {
        for step in &plan {
            println!("{}", describe(step));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // The remote API client lands in another branch; the plan is executed with
    // `remote_build::execute_plan(&plan, |f, a| client.call(f, a))` once it is merged.
    bail!(
        "building through the remote API ({}) is not wired to the remote API client in this build yet; \
         use --print-plan to see the {} calls, or generate the XML scene with --out FILE",
        args.remote,
        plan.len()
    )
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
