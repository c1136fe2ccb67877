//! The `periscope` command line: argument definitions and the commands that are not
//! the server itself.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::kinds::{self, Registry};
use crate::plugin::{self, PluginRuntime, RuntimeOptions};
use crate::snapshot;
use crate::{config, logs, serve};

/// Streams live Kubernetes state to browsers and tools.
#[derive(Debug, Parser)]
#[command(name = "periscope", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service. With no cluster configured it embeds the simulated demo
    /// cluster as cluster "demo".
    Serve {
        /// TOML configuration file (see docs/operators/configuration.md).
        #[arg(long, env = "PERISCOPE_CONFIG")]
        config: Option<PathBuf>,
        /// Listen address; overrides server.listen and PERISCOPE_LISTEN.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// A directory of extra `*.wasm` kind plugins, watched while the host runs;
        /// overrides plugins.dir and PERISCOPE_PLUGINS_DIR.
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
    },
    /// Run the simulated Kubernetes API server on its own (for kubectl, helm, or a
    /// periscope configured with `server = "<its URL>"`).
    Sim {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: std::net::SocketAddr,
        /// Starting objects and churn.
        #[arg(long, default_value = "demo", value_parser = ["demo", "empty"])]
        scenario: String,
        /// Seed of every random choice; the same seed gives the same cluster.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Extra pods for benchmarks (in namespaces bench-0…bench-9).
        #[arg(long, default_value_t = 0)]
        pods: usize,
    },
    /// Inspect and try kind plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Check kinds expressions (the grammar of PERISCOPE_WATCH_STREAMS).
    #[command(subcommand)]
    Kinds(KindsCommand),
}

/// `periscope kinds …`.
#[derive(Debug, Subcommand)]
pub enum KindsCommand {
    /// Print which kinds an expression enables (`all`, `off`, `pods,workloads`, …),
    /// exactly as `periscope serve` would resolve it.
    Resolve {
        /// The expression, e.g. "core, workloads, nodes".
        expression: String,
        /// Where plugins come from.
        #[command(flatten)]
        plugins: PluginArgs,
    },
}

/// `periscope plugins …`.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List every loaded kind plugin.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Where plugins come from.
        #[command(flatten)]
        plugins: PluginArgs,
    },
    /// Map a raw object (or a `…List` with `items`) through a kind's plugin and print
    /// the DTO JSON (a List gives the snapshot array, ordered and capped as the kind says).
    Map {
        /// The kind token (`pods`, `deployments`, …).
        kind: String,
        /// The object's JSON file; standard input when absent or `-`.
        file: Option<PathBuf>,
        /// The current time the mapping sees (RFC 3339); defaults to now.
        #[arg(long, value_parser = parse_rfc3339)]
        now: Option<OffsetDateTime>,
        /// On a failure, also print its causes (a trap's wasm backtrace); by default
        /// only the message (a guest panic's own message).
        #[arg(short, long)]
        verbose: bool,
        /// Where plugins come from.
        #[command(flatten)]
        plugins: PluginArgs,
    },
    /// Write a new kind plugin crate (builds on its own with
    /// `cargo build --release --target wasm32-wasip2`), with a sample golden case.
    New(NewArgs),
    /// Load a component with the host's rules (contract version, forbidden imports,
    /// `info`, kind names) and run its golden cases; one line per problem.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
        /// A directory of golden cases (`<case>.k8s.json` beside `<case>.dto.json`).
        golden: Option<PathBuf>,
        /// Where plugins come from (the check loads the bundled kinds beside it).
        #[command(flatten)]
        plugins: PluginArgs,
    },
}

/// `periscope plugins new`'s arguments.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The resource's plural: the URL token and crate name (`certificates`).
    pub plural: String,
    /// Kubernetes API group; "" for the core group.
    #[arg(long)]
    pub group: String,
    /// Kubernetes API version (`v1`).
    #[arg(long)]
    pub version: String,
    /// Kubernetes kind (`Certificate`).
    #[arg(long)]
    pub kind: String,
    /// The kind is cluster-scoped (default: namespaced).
    #[arg(long)]
    pub cluster_scoped: bool,
    /// The group alias the kind joins in kinds expressions.
    #[arg(long, default_value = "custom")]
    pub alias: String,
    /// Directory of the new crate [default: ./<plural>].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The periscope-plugin-sdk crate to depend on [default: the checkout this binary
    /// was built from].
    #[arg(long)]
    pub sdk: Option<PathBuf>,
    /// Allow a bundled kind's token or group alias: the plugin is meant to replace a
    /// bundled kind (the host then needs `[plugins] override` too).
    #[arg(long = "override")]
    pub override_bundled: bool,
    /// Where compiled components are cached (the bundled kinds are loaded to check the
    /// token) [default: $XDG_CACHE_HOME/periscope/components].
    #[arg(long, env = "PERISCOPE_PLUGINS_CACHE_DIR")]
    pub plugin_cache_dir: Option<PathBuf>,
}

/// Options shared by commands that load plugins.
#[derive(Debug, Args)]
pub struct PluginArgs {
    /// A directory of extra `*.wasm` kind plugins that add or override kinds.
    #[arg(long, env = "PERISCOPE_PLUGINS_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Where compiled components are cached [default: $XDG_CACHE_HOME/periscope/components].
    #[arg(long, env = "PERISCOPE_PLUGINS_CACHE_DIR")]
    pub plugin_cache_dir: Option<PathBuf>,
    /// Bundled kinds a plugin may replace (comma-separated), as `[plugins] override`.
    #[arg(long = "override", env = "PERISCOPE_PLUGINS_OVERRIDE", value_delimiter = ',')]
    pub overrides: Vec<String>,
}

fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time ({e}); example: 2026-05-01T12:00:00Z"))
}

/// Why a command failed; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user asked for something that does not exist or gave bad input (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The configuration is invalid (exit 64).
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The service could not start or stopped with an error (exit 64 for
    /// configuration problems, else 1).
    #[error(transparent)]
    Start(#[from] serve::StartError),
    /// The simulated cluster failed (exit 1).
    #[error(transparent)]
    Sim(#[from] periscope_sim::Error),
    /// A plugin could not be loaded (exit 1).
    #[error(transparent)]
    Load(#[from] plugin::LoadError),
    /// The loaded plugins do not form a registry (exit 1).
    #[error(transparent)]
    Registry(#[from] kinds::Error),
    /// The plugin runtime could not start (exit 1).
    #[error("cannot start the plugin runtime")]
    Runtime(#[source] plugin::BoxError),
    /// The object could not be mapped (exit 1).
    #[error(transparent)]
    Call(#[from] plugin::CallError),
    /// Objects of a List could not be mapped (exit 1); the details went to standard error.
    #[error("{failed} of {total} objects could not be mapped")]
    Mapping {
        /// Objects that failed.
        failed: usize,
        /// Objects in the input.
        total: usize,
    },
    /// `plugins new` could not write the crate (exit 2 for bad arguments, else 1).
    #[error(transparent)]
    Scaffold(#[from] crate::scaffold::ScaffoldError),
    /// `plugins check` found problems (exit 1); each was printed on its own line.
    #[error("{problems} problem(s) in {file}")]
    Check {
        /// How many.
        problems: usize,
        /// The component checked.
        file: String,
    },
    /// Reading input or writing output failed (exit 1).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Scaffold(crate::scaffold::ScaffoldError::Invalid(_)) => 2,
            Error::Config(_) => 64,
            Error::Start(error) if error.is_config() => 64,
            _ => 1,
        }
    }
}

/// Runs a parsed command line; installs the tracing subscriber first.
pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            plugin_dir,
        } => {
            let env = config::ProcessEnv;
            let mut config = config::load(config.as_deref(), &env)?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(dir) = plugin_dir {
                config.plugins.dir = Some(dir);
            }
            logs::init(&config.log.filter, config.log.format);
            for warning in config::unknown_env_warnings(std::env::vars().map(|(name, _)| name)) {
                tracing::warn!("{warning}");
            }
            tokio_runtime()?.block_on(async {
                let app = serve::App::build(config).await?;
                serve::cancel_on_signal(app.shutdown_token());
                app.serve().await
            })?;
            Ok(())
        }
        Command::Sim {
            listen,
            scenario,
            seed,
            pods,
        } => {
            logs::init("warn,periscope_sim=info", config::LogFormat::Plain);
            let options = periscope_sim::SimOptions {
                listen,
                scenario: scenario.parse()?,
                seed,
                pods,
                ..periscope_sim::SimOptions::default()
            };
            tokio_runtime()?.block_on(periscope_sim::run_standalone(options))?;
            Ok(())
        }
        Command::Plugins(command) => {
            logs::init("warn", config::LogFormat::Plain);
            match command {
                PluginsCommand::List { json, plugins } => list(json, &plugins),
                PluginsCommand::Map {
                    kind,
                    file,
                    now,
                    verbose,
                    plugins,
                } => map(&kind, file, now, verbose, &plugins),
                PluginsCommand::New(args) => new(args),
                PluginsCommand::Check { file, golden, plugins } => check(&file, golden.as_deref(), &plugins),
            }
        }
        Command::Kinds(KindsCommand::Resolve { expression, plugins }) => {
            logs::init("warn", config::LogFormat::Plain);
            resolve(&expression, &plugins)
        }
    }
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            what: "cannot start the async runtime".into(),
            source,
        })
}

fn plugin_runtime(args: &PluginArgs) -> Result<PluginRuntime, Error> {
    let mut options = RuntimeOptions::default();
    if let Some(dir) = &args.plugin_cache_dir {
        options.cache_dir = Some(dir.clone());
    }
    PluginRuntime::new(options).map_err(Error::Runtime)
}

fn load(args: &PluginArgs) -> Result<Registry, Error> {
    let runtime = plugin_runtime(args)?;
    Ok(Registry::new(
        runtime.load_all(args.plugin_dir.as_deref(), &args.overrides)?,
    )?)
}

fn new(args: NewArgs) -> Result<(), Error> {
    if !args.override_bundled {
        let mut options = RuntimeOptions::default();
        if let Some(dir) = &args.plugin_cache_dir {
            options.cache_dir = Some(dir.clone());
        }
        let bundled = PluginRuntime::new(options).map_err(Error::Runtime)?.load_bundled()?;
        let aliases: Vec<String> = bundled.iter().map(|p| p.info().group_alias.clone()).collect();
        if let Some(clash) = plugin::bundled_clash(&args.plural, &bundled, &aliases, &[]) {
            return Err(Error::Usage(format!(
                "{:?} {clash}; pass --override to scaffold a replacement of the bundled kind anyway",
                args.plural
            )));
        }
    }
    let sdk = args.sdk.or_else(crate::scaffold::default_sdk).ok_or_else(|| {
        Error::Usage(
            "cannot find periscope-plugin-sdk (this binary was not built from a checkout that still exists); \
                 pass --sdk <checkout>/plugins/sdk"
                .into(),
        )
    })?;
    let new = crate::scaffold::NewPlugin {
        dir: args.dir.unwrap_or_else(|| PathBuf::from(&args.plural)),
        plural: args.plural,
        group: args.group,
        version: args.version,
        kind: args.kind,
        cluster_scoped: args.cluster_scoped,
        alias: args.alias,
        sdk,
    };
    let files = crate::scaffold::write(&new)?;
    let mut out = format!("wrote {} in {}:\n", files.len(), new.dir.display());
    for file in files {
        out.push_str(&format!("  {}\n", file.display()));
    }
    out.push_str(&format!(
        "next:\n  cd {}\n  cargo test\n  cargo build --release --target wasm32-wasip2\n  periscope plugins check {} golden\n",
        new.dir.display(),
        crate::scaffold::component_path(&crate::scaffold::NewPlugin {
            dir: PathBuf::new(),
            ..new.clone()
        })
        .display()
    ));
    write_stdout(&out)
}

fn check(file: &std::path::Path, golden: Option<&std::path::Path>, args: &PluginArgs) -> Result<(), Error> {
    let bytes = std::fs::read(file).map_err(|source| Error::Io {
        what: format!("cannot read {}", file.display()),
        source,
    })?;
    let runtime = plugin_runtime(args)?;
    let failed = |problems: Vec<String>| {
        let mut out = String::new();
        for problem in &problems {
            // One line each, even when a cause (wasmtime's parser) spans several.
            let line: Vec<&str> = problem.split_whitespace().collect();
            out.push_str(&format!("problem: {}\n", line.join(" ")));
        }
        write_stdout(&out)?;
        Err(Error::Check {
            problems: problems.len(),
            file: file.display().to_string(),
        })
    };
    let plugin = match runtime.load(plugin::Source::File(file.to_path_buf()), &bytes) {
        Ok(plugin) => plugin,
        Err(error) => return failed(vec![error_chain(&error)]),
    };
    let info = plugin.info();
    let mut out = format!(
        "{}: kind {} ({} {}, {}, group alias {}, list key {}, reads {})\n",
        file.display(),
        info.token,
        info.api_version_string(),
        info.kind,
        if info.namespaced {
            "namespaced"
        } else {
            "cluster-scoped"
        },
        info.group_alias,
        info.list_key,
        if info.fields.is_empty() {
            "every key".to_string()
        } else {
            info.fields.declared().join(", ")
        }
    );
    let mut problems = Vec::new();
    // The kind must fit beside the bundled ones, as it would in a plugin directory:
    // a bundled token or alias is a clash unless `--override` allows replacing it.
    let bundled = runtime.load_bundled()?;
    let merged = plugin::merge(bundled, vec![plugin.clone()], &args.overrides);
    problems.extend(merged.refused.iter().map(|(_, error)| error_chain(error)));
    if merged.refused.is_empty() {
        if args.overrides.contains(&info.token) {
            out.push_str(&format!(
                "note: replaces the bundled kind {} (--override)\n",
                info.token
            ));
        }
        if let Err(error) = Registry::new(merged.plugins) {
            problems.push(error_chain(&error));
        }
    }
    let mut cases = 0;
    if let Some(dir) = golden {
        let report = periscope_golden::run(dir, plugin.as_ref(), false);
        cases = report.cases;
        problems.extend(report.problems.iter().map(ToString::to_string));
    }
    write_stdout(&out)?;
    if !problems.is_empty() {
        return failed(problems);
    }
    match golden {
        Some(_) => write_stdout(&format!("ok: loads, and {cases} golden case(s) pass\n")),
        None => write_stdout("ok: loads (pass a golden directory to run its cases)\n"),
    }
}

fn resolve(expression: &str, args: &PluginArgs) -> Result<(), Error> {
    let registry = load(args)?;
    let enabled = registry
        .resolve(expression)
        .map_err(|e| Error::Usage(format!("invalid kinds expression {expression:?}: {e}")))?;
    write_stdout(&format!(
        "enabled {} of {} kinds: {}\nwatch streams enabled: {}\n",
        enabled.tokens().len(),
        registry.plugins().len(),
        enabled.tokens().join(", "),
        enabled.summary()
    ))
}

fn list(json: bool, args: &PluginArgs) -> Result<(), Error> {
    let registry = load(args)?;
    let plugins = registry.plugins();
    let mut out = String::new();
    if json {
        let rows: Vec<serde_json::Value> = plugins
            .iter()
            .map(|p| {
                let info = p.info();
                serde_json::json!({
                    "token": info.token,
                    "group": info.group_alias,
                    "apiVersion": info.api_version_string(),
                    "kind": info.kind,
                    "namespaced": info.namespaced,
                    "source": p.source().to_string(),
                })
            })
            .collect();
        out = serde_json::to_string_pretty(&rows).expect("JSON values serialize") + "\n";
    } else {
        let rows: Vec<[String; 6]> = plugins
            .iter()
            .map(|p| {
                let info = p.info();
                [
                    info.token.clone(),
                    info.group_alias.clone(),
                    info.api_version_string(),
                    info.kind.clone(),
                    info.namespaced.to_string(),
                    p.source().to_string(),
                ]
            })
            .collect();
        let header = ["TOKEN", "GROUP", "APIVERSION", "KIND", "NAMESPACED", "SOURCE"].map(String::from);
        let widths: Vec<usize> = (0..6)
            .map(|i| rows.iter().chain([&header]).map(|r| r[i].len()).max().unwrap_or(0))
            .collect();
        for row in [&header].into_iter().chain(&rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
    }
    write_stdout(&out)
}

fn map(
    kind: &str,
    file: Option<PathBuf>,
    now: Option<OffsetDateTime>,
    verbose: bool,
    args: &PluginArgs,
) -> Result<(), Error> {
    // The message (a guest's panic message included) first; its causes, such as a
    // trap's wasm backtrace, only when asked for.
    let describe = |error: &plugin::CallError| {
        use std::error::Error as _;
        match error.source() {
            Some(_) if !verbose => format!("{error} (-v shows the causes)"),
            _ => error_chain(error),
        }
    };
    let input = read_input(file)?;
    let value: serde_json::Value =
        serde_json::from_str(&input).map_err(|e| Error::Usage(format!("input is not valid JSON: {e}")))?;
    let registry = load(args)?;
    let Some(plugin) = registry.get(kind) else {
        let known = registry.catalog().tokens.join(", ");
        return Err(Error::Usage(format!("unknown kind {kind:?}; known kinds: {known}")));
    };
    let now = now.unwrap_or_else(OffsetDateTime::now_utc);
    let is_list = value
        .get("kind")
        .and_then(|k| k.as_str())
        .is_some_and(|k| k.ends_with("List"));
    // What the plugin sees in production: the host's stripping first.
    let fields = &plugin.info().fields;
    let stripped = |object: &serde_json::Value| {
        let mut object = object.clone();
        periscope_golden::strip(&mut object, fields);
        object.to_string()
    };
    if !is_list {
        return match plugin.to_dto(&stripped(&value), now) {
            Ok(dto) => write_stdout(&format!("{dto}\n")),
            Err(error) => {
                eprintln!("error: {}", describe(&error));
                Err(Error::Mapping { failed: 1, total: 1 })
            }
        };
    }
    let items = value
        .get("items")
        .and_then(|i| i.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let objects: Vec<String> = items.iter().map(stripped).collect();
    let mut dtos = Vec::with_capacity(objects.len());
    let mut failed = 0;
    for (i, result) in plugin.to_dto_batch(&objects, now).into_iter().enumerate() {
        match result {
            Ok(dto) => dtos.push(dto),
            Err(e) => {
                failed += 1;
                eprintln!("error: items[{i}] ({}): {}", object_ref(&items[i]), describe(&e));
            }
        }
    }
    let dtos = snapshot::apply(plugin.info().snapshot.as_ref(), dtos, String::as_str);
    write_stdout(&format!("[{}]\n", dtos.join(",")))?;
    if failed > 0 {
        return Err(Error::Mapping {
            failed,
            total: objects.len(),
        });
    }
    Ok(())
}

fn read_input(file: Option<PathBuf>) -> Result<String, Error> {
    match file.filter(|f| f.as_os_str() != "-") {
        Some(path) => std::fs::read_to_string(&path).map_err(|source| Error::Io {
            what: format!("cannot read {}", path.display()),
            source,
        }),
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("reading the object from standard input (pass a FILE to read one instead)");
            }
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .map_err(|source| Error::Io {
                    what: "cannot read standard input".into(),
                    source,
                })?;
            Ok(input)
        }
    }
}

fn write_stdout(text: &str) -> Result<(), Error> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // A closed pipe (`| head`) is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            what: "cannot write to standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// `namespace/name` of a raw object, for error messages.
fn object_ref(object: &serde_json::Value) -> String {
    let meta = &object["metadata"];
    match (meta["namespace"].as_str(), meta["name"].as_str()) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_string(),
        _ => "unnamed".to_string(),
    }
}

/// An error and its causes on one line, like `{:#}` of anyhow.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
