//! # merchant-ai
//!
//! The command line of [merchant-ai](merchant_ai): try the four capabilities (search,
//! recommend, chat, forecast) on a sample storefront, or on your own catalog and config.
//!
//! ```text
//! merchant-ai demo                                  # everything, offline, in a few seconds
//! merchant-ai search "running shoes" --in-stock --limit 5
//! merchant-ai recommend --subject u_0001
//! merchant-ai chat "where is my order 12345?" --stream
//! merchant-ai forecast --input sales.csv --horizon 28 --output forecast.csv --plot forecast.svg
//! merchant-ai forecast --input sales.csv --horizon 28 --stock stock.csv --lead-time 7
//! merchant-ai check --config merchant-ai.toml --profile prod
//! merchant-ai redact < messages.txt > redacted.txt
//! merchant-ai drill --config merchant-ai.toml --profile staging --json
//! merchant-ai sample --out data/                    # write the sample catalog, events, sales
//! ```
//!
//! Every command takes `--config FILE`, `--profile NAME` and `--json`. Without `--config`, a
//! built-in config routes all four capabilities to the offline `rules` provider. When the
//! config has no `[catalog]` section, the sample catalog (600 products) and its shopper events
//! are loaded, so every command works out of the box.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | runtime or provider error (every provider of the route failed, a drill found a capability not served, ...) |
//! | 2 | usage or config error (bad flag, unknown profile, missing or invalid config file) |
//! | 3 | input data error (missing, unreadable or malformed CSV / JSON lines data file) |

#![warn(missing_docs)]

/// `println!` that never panics: a closed stdout (e.g. piped into `head`) is ignored.
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout());
    }};
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` that never panics.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

mod demo;
mod fail;
mod forecast;
mod print;
mod privacy;
mod setup;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use futures::StreamExt;
use merchant_ai::*;

use crate::fail::{CliError, CliResult};
use crate::setup::Session;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  runtime or provider error (for drill: a capability was not served)
  2  usage or config error (bad flag, unknown profile, missing or invalid config file)
  3  input data error (missing, unreadable or malformed CSV / JSON lines data file)

Without --config, a built-in config routes everything to the offline `rules` provider and
the sample storefront (600 products, 2,000 shoppers' events) is loaded. Start with:
  merchant-ai demo";

/// Vendor-neutral AI for merchants: search, recommend, chat and forecast, routed by config.
#[derive(Debug, Parser)]
#[command(name = "merchant-ai", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file (TOML). Default: a built-in config with the offline `rules` provider.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Profile of the config to use (default: MERCHANT_AI_PROFILE, then `default_profile`).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tour all four capabilities on the sample storefront (offline, a few seconds).
    Demo,
    /// Search the catalog.
    Search(SearchArgs),
    /// Recommend products for a shopper, a product page or a cart.
    Recommend(RecommendArgs),
    /// Send one message to the chat model (it may call the demo `order_status` tool).
    Chat(ChatArgs),
    /// Forecast daily series from a CSV (`id,date,value`), with intervals and reorder advice.
    Forecast(forecast::ForecastArgs),
    /// Validate the config and print the route table of the profile, and its data-flow map:
    /// per capability and subject region, which providers may receive which data classes,
    /// and every privacy violation in the config (exit code 2 when there is one).
    Check,
    /// Replace personal data read from stdin with typed placeholders (`[EMAIL_1]`, ...) on
    /// stdout, using the profile's `privacy` lists when --config is given.
    Redact(privacy::RedactArgs),
    /// Outage drill: force each provider down in turn (then all remote ones) and report who
    /// still serves each capability, latency and upstream attempts per call.
    Drill(DrillArgs),
    /// Write the sample storefront to files: products.jsonl, events.jsonl, sales.csv.
    Sample(SampleArgs),
}

#[derive(Debug, Args)]
struct DrillArgs {
    /// Calls per capability in each scenario.
    #[arg(long, default_value_t = 10)]
    calls: usize,
    /// Deadline of each call, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

#[derive(Debug, Args)]
struct SearchArgs {
    /// The query.
    query: String,
    /// Maximum number of hits.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Only this brand (repeat for several).
    #[arg(long = "brand", value_name = "B")]
    brands: Vec<String>,
    /// Only products in stock.
    #[arg(long)]
    in_stock: bool,
    /// Only this category path or prefix, e.g. "Sports > Running".
    #[arg(long, value_name = "A > B")]
    category: Option<String>,
    /// Language of the query (e.g. zh); detected by the provider when absent.
    #[arg(long)]
    lang: Option<String>,
}

#[derive(Debug, Args)]
struct RecommendArgs {
    /// The pseudonymous shopper (e.g. u_0001 in the sample data).
    #[arg(long)]
    subject: Option<String>,
    /// The product being looked at (product page) or in the cart (repeat for several).
    #[arg(long = "product", value_name = "ID")]
    products: Vec<String>,
    /// home, product_page, cart, post_purchase, email (default: product_page with --product,
    /// home otherwise).
    #[arg(long)]
    scene: Option<String>,
    /// Maximum number of items.
    #[arg(long, default_value_t = 10)]
    limit: usize,
}

#[derive(Debug, Args)]
struct ChatArgs {
    /// The shopper's message.
    message: String,
    /// Print the answer as it arrives.
    #[arg(long)]
    stream: bool,
}

#[derive(Debug, Args)]
struct SampleArgs {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of products.
    #[arg(long, default_value_t = merchant_ai_rules::sample::DEFAULT_PRODUCTS)]
    products: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = merchant_ai_rules::sample::DEFAULT_SEED)]
    seed: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(fail::RUNTIME);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

async fn run(cli: Cli) -> CliResult<()> {
    let g = cli.global;
    match cli.command {
        Command::Demo => demo::run(&g).await,
        Command::Search(a) => search(&g, a).await,
        Command::Recommend(a) => recommend(&g, a).await,
        Command::Chat(a) => chat(&g, a).await,
        Command::Forecast(a) => forecast::run(&g, a).await,
        Command::Check => check(&g).await,
        Command::Redact(a) => privacy::redact(&g, a),
        Command::Drill(a) => drill(&g, a).await,
        Command::Sample(a) => sample(&g, a),
    }
}

async fn search(g: &GlobalArgs, a: SearchArgs) -> CliResult<()> {
    let s = Session::start(g, true).await?;
    let mut filters = Filters::new().with_in_stock(a.in_stock);
    for b in a.brands {
        filters = filters.with_brand(b);
    }
    if let Some(c) = &a.category {
        filters = filters.with_category_prefix(split_category(c));
    }
    let mut req = SearchRequest::new(a.query)
        .with_limit(a.limit)
        .with_filters(filters)
        .with_facet(Facet::Brand)
        .with_facet(Facet::Category { depth: 0 });
    req.language = a.lang;
    let r = s.client.searcher()?.search(req).await?;
    if g.json {
        print::json(&r)
    } else {
        print::search_hits(&r, None);
        print::facets(&r);
        outln!("{}", print::served(&r.meta));
        Ok(())
    }
}

async fn recommend(g: &GlobalArgs, a: RecommendArgs) -> CliResult<()> {
    let s = Session::start(g, true).await?;
    let scene = match (&a.scene, a.products.is_empty()) {
        (Some(sc), _) => Scene::from(sc.as_str()),
        (None, false) => Scene::ProductPage,
        (None, true) => Scene::Home,
    };
    let mut req = RecommendRequest::new(scene.clone()).with_limit(a.limit);
    if let Some(sub) = a.subject {
        req = req.with_subject(sub);
    }
    match scene {
        Scene::ProductPage => {
            if let Some(first) = a.products.first() {
                req = req.with_anchor(first.as_str());
            }
            if a.products.len() > 1 {
                req = req.with_session_items(a.products.iter().skip(1).map(String::as_str));
            }
        }
        _ => req = req.with_session_items(a.products.iter().map(String::as_str)),
    }
    let r = s.client.recommender()?.recommend(req).await?;
    if g.json {
        print::json(&r)
    } else {
        print::recommendations(&r, &s);
        outln!("{}", print::served(&r.meta));
        Ok(())
    }
}

async fn chat(g: &GlobalArgs, a: ChatArgs) -> CliResult<()> {
    let s = Session::start(g, true).await?;
    let model = s.client.chat_model()?;
    let mut messages = vec![
        Message::system(demo::SYSTEM_PROMPT),
        Message::user(a.message),
    ];
    let mut transcript = Vec::new();
    // At most a few tool rounds: the CLI plays the shop's backend with canned results.
    for _ in 0..3 {
        let req = ChatRequest::new(messages.clone())
            .with_tool(demo::order_status_tool())
            .with_seed(7u64);
        let r = if a.stream && !g.json {
            stream_reply(model.as_ref(), req).await?
        } else {
            model.chat(req).await?
        };
        if !g.json && !a.stream && !r.text.is_empty() {
            outln!("{}", r.text);
        }
        let calls = r.tool_calls.clone();
        messages.push(r.to_message());
        transcript.push(serde_json::to_value(&r).map_err(CliError::runtime)?);
        if calls.is_empty() {
            if !g.json {
                outln!("{}", print::served(&r.meta));
            }
            break;
        }
        for call in calls {
            let result = demo::run_tool(&call);
            if !g.json {
                outln!(
                    "-> tool call {}({}) => {}",
                    call.name,
                    call.arguments,
                    result
                );
            }
            messages.push(Message::tool_result(call.id.clone(), result));
        }
    }
    if g.json {
        print::json(&serde_json::json!({ "responses": transcript }))?;
    }
    Ok(())
}

/// Streams one reply, printing text deltas as they arrive; returns the collected response.
async fn stream_reply(model: &dyn ChatModel, req: ChatRequest) -> CliResult<ChatResponse> {
    let mut stream = model.chat_stream(req).await?;
    // Tool calls streamed in pieces are assembled by index.
    let mut collector = StreamCollector::new();
    let mut out = std::io::stdout();
    while let Some(ev) = stream.next().await {
        let ev = ev?;
        if let ChatEvent::TextDelta { text } = &ev {
            out!("{text}");
            let _ = out.flush();
        }
        let printed = !collector.text().is_empty();
        if let Some(r) = collector.push(ev) {
            if printed {
                outln!();
            }
            return Ok(r);
        }
    }
    Err(CliError::runtime(
        "the chat stream ended without a finished event",
    ))
}

async fn check(g: &GlobalArgs) -> CliResult<()> {
    let s = Session::start(g, false).await?;
    let table = s.client.routes();
    let flow = s.client.data_flow();
    let violations = flow.violations.len();
    let result = if g.json {
        print::json(&serde_json::json!({
            "config": s.config.source(),
            "profile": table.profile,
            "routes": table,
            "data_flow": flow,
            "catalog": {
                "products": s.config.catalog().products,
                "events": s.config.catalog().events,
            },
        }))
    } else {
        let source = match &g.config {
            Some(p) => p.display().to_string(),
            None => "(built in)".to_owned(),
        };
        outln!("config {source}: ok");
        out!("{table}");
        out!("{flow}");
        Ok(())
    };
    result?;
    if violations > 0 {
        return Err(CliError::usage(format!(
            "the config has {violations} privacy violation(s), listed above"
        )));
    }
    Ok(())
}

async fn drill(g: &GlobalArgs, a: DrillArgs) -> CliResult<()> {
    if a.calls == 0 {
        return Err(CliError::usage("--calls must be at least 1"));
    }
    let s = Session::start(g, true).await?;
    let opts = merchant_ai::drill::DrillOptions::default()
        .with_calls(a.calls)
        .with_timeout(std::time::Duration::from_millis(a.timeout_ms));
    let report = merchant_ai::drill::run(&s.client, &opts).await;
    if g.json {
        print::json(&report)?;
    } else {
        outln!("{report}");
    }
    if report.all_served() {
        Ok(())
    } else {
        Err(CliError::runtime(
            "some capabilities were not served in some scenarios",
        ))
    }
}

fn sample(g: &GlobalArgs, a: SampleArgs) -> CliResult<()> {
    use merchant_ai_rules::sample;
    std::fs::create_dir_all(&a.out).map_err(|e| {
        CliError::runtime(format!("cannot create directory {}: {e}", a.out.display()))
    })?;
    let products = sample::products(a.products, a.seed);
    let events = sample::events(&products, a.seed);
    let sales = sample::daily_sales(&products[..products.len().min(12)], 180, a.seed);
    let write_jsonl = |name: &str, lines: Vec<String>| -> CliResult<PathBuf> {
        let path = a.out.join(name);
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&path, text)
            .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    };
    let to_lines = |v: Vec<serde_json::Result<String>>| -> CliResult<Vec<String>> {
        v.into_iter()
            .collect::<serde_json::Result<_>>()
            .map_err(CliError::runtime)
    };
    let p = write_jsonl(
        "products.jsonl",
        to_lines(products.iter().map(serde_json::to_string).collect())?,
    )?;
    let e = write_jsonl(
        "events.jsonl",
        to_lines(events.iter().map(serde_json::to_string).collect())?,
    )?;
    let s = a.out.join("sales.csv");
    std::fs::write(&s, forecast::series_to_csv(&sales))
        .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", s.display())))?;
    if g.json {
        print::json(&serde_json::json!({
            "products": p, "events": e, "sales": s,
            "counts": { "products": products.len(), "events": events.len(), "series": sales.len() },
        }))
    } else {
        outln!("wrote {} products to {}", products.len(), p.display());
        outln!("wrote {} events to {}", events.len(), e.display());
        outln!(
            "wrote {} daily sales series to {}",
            sales.len(),
            s.display()
        );
        outln!(
            "use them with a config containing:\n  [catalog]\n  products = \"{}\"\n  events = \"{}\"",
            p.display(),
            e.display()
        );
        Ok(())
    }
}

/// Splits "A > B > C" into its levels.
fn split_category(s: &str) -> Vec<String> {
    s.split('>')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}
