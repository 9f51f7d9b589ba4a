//! OpenSearch (industry / high-performance edition, API v3) as a [`Searcher`]: kind
//! `opensearch`.
//!
//! - **search**: `GET /v3/openapi/apps/{app}/search` with a query built from the
//!   [`SearchRequest`] ([`build_query`]): `config` (paging, `format:fulljson`), `query` (the
//!   text on `query_index`, or `match_all` when the text is empty), `filter` (every
//!   [`Filters`](merchant_ai::Filters) field), `sort` and `aggregate` (facets). Values are
//!   escaped; the request is signed with OpenSearch's scheme ([`crate::sign`]).
//! - **upsert / remove**: `POST /v3/openapi/apps/{app}/{table}/actions/bulk` with `ADD` and
//!   `DELETE` commands, in batches of 200 documents, `Content-MD5` and signed.
//! - **errors**: an HTTP error maps as in [`crate::service`]; an HTTP 200 whose body says
//!   `"status":"FAIL"` maps its first error code: 1000 `Timeout`; 2001 (no such app or index)
//!   `NotFound`; 3007 (push rate) `RateLimited`; 4003 (signature) and 5001 (no such user/key)
//!   `Unauthenticated`; 4007 and 6xxx (query syntax) `InvalidRequest`; others `Unexpected`.
//!   A FAIL is never retryable unless the HTTP status was 5xx; a FAIL body sent with a 4xx
//!   status (other than 429) takes its kind from the code too.
//!
//! ## The application schema it expects
//!
//! Pushed documents carry these fields (create them in the app's table, with the attribute
//! fields marked as attributes so filters, sorts and aggregates work):
//!
//! | field | type | holds |
//! |---|---|---|
//! | `id` | LITERAL (primary key) | product id |
//! | `title`, `description` | TEXT (in the `query_index` index) | texts |
//! | `brand` | LITERAL | brand as given (facets) |
//! | `brand_lc` | LITERAL | brand, ASCII lower-case (filters) |
//! | `category` | TEXT | `"A > B > C"` |
//! | `cat_path` | LITERAL_ARRAY | every category prefix, lower-case, joined with `" > "` |
//! | `cat0`, `cat1`, `cat2` | LITERAL | category levels (facets) |
//! | `price` | INT64 | price in minor units |
//! | `currency` | LITERAL | ISO 4217 code |
//! | `stock` | INT64 | units, `-1` when not tracked |
//! | `in_stock` | INT | 1 or 0 |
//! | `attrs` | LITERAL_ARRAY | `name=value`, lower-case |
//! | `tags` | LITERAL_ARRAY | tags |
//! | `created_at` | INT64 | seconds since the epoch, 0 when unknown |
//! | `doc_type` | LITERAL (indexed as `doc_type`) | always `product`: `match_all` queries it |
//!
//! OpenSearch applies pushed documents asynchronously (typically within a second): a product
//! is searchable shortly after `upsert` returns, not at once.
//!
//! ```toml
//! [providers.os]
//! kind = "opensearch"
//! region = "cn-hangzhou"                   # the endpoint defaults to opensearch-{region}.aliyuncs.com
//! app = "shop_products"
//! access_key_id_env = "ALIBABA_CLOUD_ACCESS_KEY_ID"
//! access_key_secret_env = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use merchant_ai::{
    AdapterFactory, BuildContext, Capabilities, ChatModel, Error, ErrorKind, Facet, FacetCounts,
    Forecaster, IndexReport, Product, ProductId, Provider, ProviderConfig, ProviderInfo,
    Recommender, ResponseMeta, Result, SearchHit, SearchMode, SearchRequest, SearchResponse,
    Searcher, SortBy, Usage,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::service::{self, Endpoint};
use crate::sign::{Signer, encode_path, opensearch_query};

/// The `kind` of the OpenSearch adapter.
pub const KIND: &str = "opensearch";

/// Documents per push request.
pub const PUSH_BATCH: usize = 200;

/// OpenSearch's largest page (`hit`).
pub const MAX_HIT: usize = 500;

/// OpenSearch's deepest result (`start + hit`).
pub const MAX_DEPTH: usize = 5000;

/// Options of a `[providers.NAME]` section of kind `opensearch`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenSearchConfig {
    /// The API endpoint; default `https://opensearch-{region}.aliyuncs.com`.
    pub endpoint: Option<String>,
    /// The application name (required).
    pub app: String,
    /// The table documents are pushed to. Default `main`.
    pub table: String,
    /// The index the text query runs on. Default `default`.
    pub query_index: String,
    /// The query clause used when the text is empty. Default `doc_type:'product'`.
    pub match_all: String,
    /// The env var holding the AccessKey id.
    pub access_key_id_env: Option<String>,
    /// The env var holding the AccessKey secret.
    pub access_key_secret_env: Option<String>,
    /// The env var holding an STS token (optional).
    pub security_token_env: Option<String>,
    /// Where the data is processed, overriding the region's jurisdiction.
    pub jurisdiction: Option<String>,
    /// Whole-request timeout in milliseconds. Default 10 000.
    pub timeout_ms: u64,
    /// Connect timeout in milliseconds. Default 5 000.
    pub connect_timeout_ms: u64,
}

impl Default for OpenSearchConfig {
    fn default() -> Self {
        OpenSearchConfig {
            endpoint: None,
            app: String::new(),
            table: "main".into(),
            query_index: "default".into(),
            match_all: "doc_type:'product'".into(),
            access_key_id_env: None,
            access_key_secret_env: None,
            security_token_env: None,
            jurisdiction: None,
            timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl OpenSearchConfig {
    /// Checks the options; the error names the key.
    pub fn validate(&self, cfg: &ProviderConfig) -> Result<()> {
        if !valid_name(&self.app) {
            return Err(Error::config(format!(
                "{}: the application name is required (letters, digits, _ and -)",
                cfg.key_path("app")
            )));
        }
        if !valid_name(&self.table) {
            return Err(Error::config(format!(
                "{}: letters, digits, _ and - only",
                cfg.key_path("table")
            )));
        }
        if !valid_name(&self.query_index) {
            return Err(Error::config(format!(
                "{}: letters, digits, _ and - only",
                cfg.key_path("query_index")
            )));
        }
        if self.match_all.trim().is_empty() || self.match_all.contains("&&") {
            return Err(Error::config(format!(
                "{}: one query clause such as \"doc_type:'product'\"",
                cfg.key_path("match_all")
            )));
        }
        self.endpoint(cfg)?;
        Ok(())
    }

    fn endpoint(&self, cfg: &ProviderConfig) -> Result<Endpoint> {
        match (&self.endpoint, cfg.region()) {
            (Some(e), _) => Endpoint::parse(e, &cfg.key_path("endpoint")),
            (None, Some(r)) => Endpoint::parse(
                &format!("https://opensearch-{r}.aliyuncs.com"),
                &cfg.key_path("region"),
            ),
            (None, None) => Err(Error::config(format!(
                "{}: set `endpoint` or `region`",
                cfg.key_path("endpoint")
            ))),
        }
    }
}

/// Escapes a value for a single-quoted query term.
fn query_value(s: &str) -> String {
    // `&&` separates clauses; a keyword query loses nothing when `&` becomes a space.
    let s = s.replace('&', " ");
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '\'' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.trim().to_owned()
}

/// Escapes a value for a double-quoted filter literal; `&&` cannot be carried.
fn filter_value(s: &str, field: &str) -> Result<String> {
    if s.contains("&&") {
        return Err(Error::invalid_request(format!(
            "{field}: a value containing \"&&\" cannot be expressed in an OpenSearch filter"
        )));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// The `group_key` of a facet, or why it cannot be counted.
fn facet_key(f: &Facet) -> Result<String> {
    match f {
        Facet::Brand => Ok("brand".into()),
        Facet::InStock => Ok("in_stock".into()),
        Facet::Category { depth } if *depth <= 2 => Ok(format!("cat{depth}")),
        other => Err(Error::unsupported(format!(
            "facet {}: OpenSearch facets are brand, in_stock and category depths 0 to 2",
            other.name()
        ))),
    }
}

/// The raw `query` parameter for `req` (before URL encoding): clauses joined by `&&`.
pub fn build_query(req: &SearchRequest, cfg: &OpenSearchConfig) -> Result<String> {
    req.validate()?;
    if req.limit > MAX_HIT {
        return Err(Error::invalid_request(format!(
            "limit: OpenSearch returns at most {MAX_HIT} hits per page, got {}",
            req.limit
        )));
    }
    if req.offset.saturating_add(req.limit) > MAX_DEPTH {
        return Err(Error::invalid_request(format!(
            "offset: OpenSearch pages reach at most result {MAX_DEPTH}, got offset {} + limit {}",
            req.offset, req.limit
        )));
    }
    let mut clauses = vec![format!(
        "config=start:{},hit:{},format:fulljson",
        req.offset, req.limit
    )];
    let text = query_value(&req.query);
    clauses.push(if text.is_empty() {
        format!("query={}", cfg.match_all.trim())
    } else {
        format!("query={}:'{text}'", cfg.query_index)
    });
    let f = &req.filters;
    let mut filters: Vec<String> = Vec::new();
    if f.in_stock {
        filters.push("in_stock=1".into());
    }
    if !f.brands.is_empty() {
        let ors = f
            .brands
            .iter()
            .map(|b| {
                Ok(format!(
                    "brand_lc={}",
                    filter_value(&b.to_ascii_lowercase(), "filters.brands")?
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        filters.push(format!("({})", ors.join(" OR ")));
    }
    if !f.category_prefix.is_empty() {
        let p = f
            .category_prefix
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(" > ");
        filters.push(format!(
            "cat_path={}",
            filter_value(&p, "filters.category_prefix")?
        ));
    }
    if let Some(r) = f.price {
        let cur = r.min.or(r.max).map(|m| m.currency);
        if let Some(c) = cur {
            filters.push(format!(
                "currency={}",
                filter_value(c.code(), "filters.price")?
            ));
        }
        if let Some(m) = r.min {
            filters.push(format!("price>={}", m.minor));
        }
        if let Some(m) = r.max {
            filters.push(format!("price<={}", m.minor));
        }
    }
    for (k, v) in &f.attributes {
        let pair = format!("{}={}", k.to_ascii_lowercase(), v.to_ascii_lowercase());
        filters.push(format!(
            "attrs={}",
            filter_value(&pair, "filters.attributes")?
        ));
    }
    if !filters.is_empty() {
        clauses.push(format!("filter={}", filters.join(" AND ")));
    }
    clauses.push(
        match req.sort {
            SortBy::PriceAsc => "sort=+price;-RANK",
            SortBy::PriceDesc => "sort=-price;-RANK",
            SortBy::Newest => "sort=-created_at;-RANK",
            _ => "sort=-RANK",
        }
        .into(),
    );
    if !req.facets.is_empty() {
        let aggs = req
            .facets
            .iter()
            .map(|f| facet_key(f).map(|k| format!("group_key:{k},agg_fun:count()")))
            .collect::<Result<Vec<_>>>()?;
        clauses.push(format!("aggregate={}", aggs.join(";")));
    }
    Ok(clauses.join("&&"))
}

/// The document fields pushed for `p` (see the schema in the module docs).
pub fn document(p: &Product) -> Value {
    let lc = |s: &str| s.to_ascii_lowercase();
    let prefixes: Vec<String> = (1..=p.category.len())
        .map(|n| {
            p.category[..n]
                .iter()
                .map(|s| lc(s))
                .collect::<Vec<_>>()
                .join(" > ")
        })
        .collect();
    let attrs: Vec<String> = p
        .attributes
        .iter()
        .map(|(k, v)| format!("{}={}", lc(k), lc(v)))
        .collect();
    json!({
        "id": p.id.as_str(),
        "title": p.title,
        "description": p.description,
        "brand": p.brand.clone().unwrap_or_default(),
        "brand_lc": p.brand.as_deref().map(lc).unwrap_or_default(),
        "category": p.category_path(),
        "cat_path": prefixes,
        "cat0": p.category.first().cloned().unwrap_or_default(),
        "cat1": p.category.get(1).cloned().unwrap_or_default(),
        "cat2": p.category.get(2).cloned().unwrap_or_default(),
        "price": p.price.minor,
        "currency": p.price.currency.code(),
        "stock": p.stock.map_or(-1, i64::from),
        "in_stock": i32::from(p.in_stock()),
        "attrs": attrs,
        "tags": p.tags,
        "created_at": p.created_at.map_or(0, |t| t.timestamp()),
        "doc_type": "product",
    })
}

/// The kind for an OpenSearch error code inside a `FAIL` body.
pub fn fail_kind(code: i64) -> ErrorKind {
    match code {
        1000 => ErrorKind::Timeout,
        2001 => ErrorKind::NotFound,
        3007 => ErrorKind::RateLimited,
        4003 | 5001 => ErrorKind::Unauthenticated,
        4007 | 6000..=6999 => ErrorKind::InvalidRequest,
        _ => ErrorKind::Unexpected,
    }
}

/// Reads a 200 body: `Ok(body)` when `status` is `OK`, the mapped error when `FAIL`.
pub fn check_status(body: &[u8]) -> Result<Value> {
    let v = service::json_body(KIND, body)?;
    let status = v.get("status").and_then(Value::as_str).unwrap_or_default();
    let rid = service::field(&v, &["request_id", "requestId"]);
    match status {
        "OK" => Ok(v),
        "FAIL" => {
            let first = v
                .get("errors")
                .and_then(Value::as_array)
                .and_then(|a| a.first());
            let code = first
                .and_then(|e| e.get("code"))
                .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok()));
            let msg = first
                .and_then(|e| service::field(e, &["message"]))
                .map(|m| service::cut(&m))
                .unwrap_or_else(|| "no message".into());
            let kind = code.map_or(ErrorKind::Unexpected, fail_kind);
            let mut e = Error::new(kind, format!("{KIND}: status FAIL: {msg}"))
                // A FAIL inside an HTTP 200 is an answer, not an outage: not retried.
                .with_retryable(false);
            if let Some(c) = code {
                e = e.with_vendor_code(c.to_string());
            }
            if let Some(r) = rid {
                e = e.with_request_id(r);
            }
            Err(e)
        }
        _ => Err(Error::decode(format!(
            "{KIND}: the answer has no status OK or FAIL"
        ))),
    }
}

/// A 4xx answer whose body is an OpenSearch `FAIL` takes its kind from the error code (a
/// signature error 4003 sent with a 403 is `Unauthenticated`, not `PermissionDenied`).
fn refine(e: Error) -> Error {
    let (Some(status), Some(code)) = (
        e.status(),
        e.vendor_code().and_then(|c| c.parse::<i64>().ok()),
    ) else {
        return e;
    };
    let kind = fail_kind(code);
    if !(400..500).contains(&status) || status == 429 || kind == ErrorKind::Unexpected {
        return e;
    }
    let mut out = Error::new(kind, e.message().to_owned())
        .with_status(status)
        .with_vendor_code(code.to_string())
        .with_retryable(false);
    if let Some(r) = e.request_id() {
        out = out.with_request_id(r.to_owned());
    }
    out
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// Parses an `OK` search body into hits, total and facets (in the order of `facets`).
pub fn parse_search(
    v: &Value,
    facets: &[Facet],
) -> Result<(Vec<SearchHit>, u64, Vec<FacetCounts>)> {
    let bad = |what: &str| Error::decode(format!("{KIND}: the search answer has {what}"));
    let result = v.get("result").ok_or_else(|| bad("no result"))?;
    let items = result
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no result.items list"))?;
    let mut hits = Vec::with_capacity(items.len());
    let mut prev = f32::INFINITY;
    for (i, it) in items.iter().enumerate() {
        let fields = it.get("fields").unwrap_or(it);
        let id = service::field(fields, &["id"]).ok_or_else(|| bad("an item without fields.id"))?;
        let vendor = it
            .get("sortExprValues")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(number)
            .map(|s| s as f32)
            .filter(|s| s.is_finite());
        // Keep the vendor's order; scores never increase down the page.
        let score = vendor.unwrap_or(1.0 / (1.0 + i as f32)).min(prev);
        prev = score;
        hits.push(SearchHit::new(id, score));
    }
    let total = result
        .get("total")
        .and_then(Value::as_u64)
        .unwrap_or(hits.len() as u64);
    let mut out = Vec::new();
    let groups = result.get("facet").and_then(Value::as_array);
    for f in facets {
        let key = facet_key(f)?;
        let mut counts: Vec<(String, u64)> = groups
            .and_then(|g| {
                g.iter()
                    .find(|x| x.get("key").and_then(Value::as_str) == Some(key.as_str()))
            })
            .and_then(|g| g.get("items").and_then(Value::as_array))
            .map(|items| {
                items
                    .iter()
                    .filter_map(|x| {
                        let v = service::field(x, &["value"])?;
                        let n = x.get("count").and_then(number)? as u64;
                        Some((v, n))
                    })
                    .filter(|(v, _)| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if matches!(f, Facet::InStock) {
            for c in &mut counts {
                c.0 = if c.0 == "1" {
                    "in_stock"
                } else {
                    "out_of_stock"
                }
                .into();
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.push(FacetCounts::new(f.name(), counts));
    }
    Ok((hits, total, out))
}

struct Inner {
    name: String,
    http: reqwest::Client,
    endpoint: Endpoint,
    cfg: OpenSearchConfig,
    signer: Signer,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenSearchSearcher")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint.origin)
            .field("app", &self.cfg.app)
            .finish_non_exhaustive()
    }
}

/// The OpenSearch searcher.
#[derive(Debug, Clone)]
pub struct OpenSearchSearcher(Arc<Inner>);

impl OpenSearchSearcher {
    fn tag(&self, e: Error, op: &str) -> Error {
        e.with_provider(self.0.name.clone()).with_operation(op)
    }

    fn path(&self, tail: &str) -> String {
        format!(
            "{}/v3/openapi/apps/{}{tail}",
            self.0.endpoint.base_path,
            encode_path(&self.0.cfg.app)
        )
    }

    async fn push(&self, docs: Vec<Value>) -> Result<()> {
        let path = self.path(&format!("/{}/actions/bulk", encode_path(&self.0.cfg.table)));
        for chunk in docs.chunks(PUSH_BATCH) {
            let body = serde_json::to_vec(chunk)?;
            let headers = self.0.signer.opensearch("POST", &path, &[], Some(&body));
            let mut rb = self
                .0
                .http
                .post(format!("{}{path}", self.0.endpoint.origin))
                .body(body);
            for (k, v) in &headers {
                rb = rb.header(k.as_str(), v.as_str());
            }
            tracing::debug!(provider = %self.0.name, docs = chunk.len(), "opensearch push");
            let (_, _, body) = service::exchange(KIND, rb).await.map_err(refine)?;
            check_status(&body)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Searcher for OpenSearchSearcher {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        let mut report = IndexReport::new(0);
        let mut docs = Vec::new();
        for p in &products {
            match p.validate() {
                Ok(()) => docs.push(json!({"cmd": "ADD", "fields": document(p)})),
                Err(e) => report = report.with_rejected(p.id.clone(), e.message().to_owned()),
            }
        }
        let n = docs.len();
        if n > 0 {
            self.push(docs).await.map_err(|e| self.tag(e, "upsert"))?;
        }
        report.applied = n;
        Ok(report)
    }

    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        let docs: Vec<Value> = ids
            .iter()
            .filter(|id| !id.as_str().is_empty())
            .map(|id| json!({"cmd": "DELETE", "fields": {"id": id.as_str()}}))
            .collect();
        let n = docs.len();
        if n > 0 {
            self.push(docs).await.map_err(|e| self.tag(e, "remove"))?;
        }
        Ok(IndexReport::new(n))
    }

    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let started = Instant::now();
        let q = build_query(&req, &self.0.cfg).map_err(|e| self.tag(e, "search"))?;
        let path = self.path("/search");
        let params = vec![
            ("query".to_owned(), q),
            ("fetch_fields".to_owned(), "id".to_owned()),
        ];
        let headers = self.0.signer.opensearch("GET", &path, &params, None);
        let url = format!(
            "{}{path}?{}",
            self.0.endpoint.origin,
            opensearch_query(&params)
        );
        let mut rb = self.0.http.get(url);
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        tracing::debug!(provider = %self.0.name, limit = req.limit, "opensearch search");
        let (_, _, body) = service::exchange(KIND, rb)
            .await
            .map_err(|e| self.tag(refine(e), "search"))?;
        let v = check_status(&body).map_err(|e| self.tag(e, "search"))?;
        let (hits, total, facets) =
            parse_search(&v, &req.facets).map_err(|e| self.tag(e, "search"))?;
        let mut meta = ResponseMeta::new(self.0.name.clone())
            .with_usage(Usage::new().with_units(1))
            .with_latency(started.elapsed());
        meta.request_id = service::field(&v, &["request_id", "requestId"]);
        Ok(SearchResponse::new(hits, total, meta)
            .with_facets(facets)
            .with_mode(SearchMode::Keyword))
    }
}

/// A provider offering OpenSearch as its searcher.
#[derive(Debug)]
pub struct OpenSearchProvider {
    info: ProviderInfo,
    searcher: Arc<OpenSearchSearcher>,
}

impl OpenSearchProvider {
    /// Builds the provider from its section and a signer (tests pass a signer with a fixed
    /// clock and nonce).
    pub fn new(cfg: &ProviderConfig, c: OpenSearchConfig, signer: Signer) -> Result<Self> {
        c.validate(cfg)?;
        let (region, j) = service::residency(cfg, c.jurisdiction.as_deref())?;
        let endpoint = c.endpoint(cfg)?;
        let http = service::client(cfg.name(), c.timeout_ms, c.connect_timeout_ms)?;
        let info = ProviderInfo::remote(
            cfg.name(),
            KIND,
            region,
            Some(j),
            Capabilities::none().with_search(),
        );
        Ok(OpenSearchProvider {
            info,
            searcher: Arc::new(OpenSearchSearcher(Arc::new(Inner {
                name: cfg.name().to_owned(),
                http,
                endpoint,
                cfg: c,
                signer,
            }))),
        })
    }
}

impl Provider for OpenSearchProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        Some(self.searcher.clone())
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        None
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        None
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        None
    }
}

/// The factory to register: `Registry::new().with(merchant_ai_alibaba::opensearch_factory())`.
pub fn factory() -> OpenSearchFactory {
    OpenSearchFactory
}

/// Builds [`OpenSearchProvider`]s from `kind = "opensearch"` sections.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenSearchFactory;

#[async_trait]
impl AdapterFactory for OpenSearchFactory {
    fn kind(&self) -> &str {
        KIND
    }
    fn capabilities(&self, cfg: &ProviderConfig) -> Result<Capabilities> {
        let c: OpenSearchConfig = cfg.options_as()?;
        c.validate(cfg)?;
        service::residency(cfg, c.jurisdiction.as_deref())?;
        Ok(Capabilities::none().with_search())
    }
    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let c: OpenSearchConfig = ctx.provider.options_as()?;
        let signer = Signer::new(service::credentials(ctx.provider)?);
        Ok(Arc::new(OpenSearchProvider::new(ctx.provider, c, signer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use merchant_ai::{Currency, Filters, Money, PriceRange};

    fn cfg() -> OpenSearchConfig {
        OpenSearchConfig {
            app: "shop".into(),
            ..Default::default()
        }
    }

    #[test]
    fn clauses_from_a_request() {
        let req = SearchRequest::new("men's \\ shoes && socks")
            .with_filters(
                Filters::new()
                    .with_in_stock(true)
                    .with_brand("Peak\"line")
                    .with_brand("Acme")
                    .with_category_prefix(["Sports", "Running"])
                    .with_price(PriceRange::new(
                        Some(Money::new(100, Currency::CNY)),
                        Some(Money::new(900, Currency::CNY)),
                    ))
                    .with_attribute("Color", "RED"),
            )
            .with_sort(SortBy::PriceAsc)
            .with_offset(20)
            .with_limit(10)
            .with_facet(Facet::Brand)
            .with_facet(Facet::Category { depth: 1 });
        let q = build_query(&req, &cfg()).unwrap();
        assert_eq!(
            q,
            "config=start:20,hit:10,format:fulljson&&query=default:'men\\'s \\\\ shoes    socks'\
             &&filter=in_stock=1 AND (brand_lc=\"peak\\\"line\" OR brand_lc=\"acme\") AND \
             cat_path=\"sports > running\" AND currency=\"CNY\" AND price>=100 AND price<=900 AND \
             attrs=\"color=red\"&&sort=+price;-RANK\
             &&aggregate=group_key:brand,agg_fun:count();group_key:cat1,agg_fun:count()"
        );
        let empty = build_query(&SearchRequest::new("  "), &cfg()).unwrap();
        assert_eq!(
            empty,
            "config=start:0,hit:10,format:fulljson&&query=doc_type:'product'&&sort=-RANK"
        );
    }

    #[test]
    fn bad_requests_name_the_field() {
        let e = build_query(&SearchRequest::new("x").with_limit(600), &cfg()).unwrap_err();
        assert!(e.message().starts_with("limit"), "{e}");
        let e = build_query(
            &SearchRequest::new("x").with_offset(4995).with_limit(10),
            &cfg(),
        )
        .unwrap_err();
        assert!(e.message().starts_with("offset"), "{e}");
        let e = build_query(&SearchRequest::new("x").with_offset(usize::MAX), &cfg()).unwrap_err();
        assert!(e.message().starts_with("offset"), "{e}");
        let e = build_query(
            &SearchRequest::new("x").with_filters(Filters::new().with_brand("a&&b")),
            &cfg(),
        )
        .unwrap_err();
        assert!(e.message().starts_with("filters.brands"), "{e}");
        let e = build_query(
            &SearchRequest::new("x").with_facet(Facet::Attribute { name: "c".into() }),
            &cfg(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn ok_body_fixture() {
        let body = br#"{"status":"OK","request_id":"170416464512345678","result":{"searchtime":0.012,"total":2,"num":2,
 "viewtotal":2,"items":[{"fields":{"id":"1","title":"phone case"}},{"fields":{"id":"7","title":"phone"}}],
 "facet":[]},"errors":[],"tracer":""}"#;
        let v = check_status(body).unwrap();
        let (hits, total, facets) = parse_search(&v, &[Facet::Brand]).unwrap();
        assert_eq!(total, 2);
        assert_eq!(
            hits.iter()
                .map(|h| h.product_id.as_str())
                .collect::<Vec<_>>(),
            ["1", "7"]
        );
        assert!(hits[0].score >= hits[1].score);
        assert_eq!(facets[0].facet, "brand");
        assert!(facets[0].counts.is_empty());
    }

    #[test]
    fn fail_body_fixture() {
        let body = br#"{"status":"FAIL","request_id":"r-9","result":{"searchtime":0.0,"total":0,"num":0,"viewtotal":0,"items":[],"facet":[]},"errors":[{"code":5001,"message":"User doesnot exist"}],"tracer":""}"#;
        let e = check_status(body).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert_eq!(e.vendor_code(), Some("5001"));
        assert_eq!(e.request_id(), Some("r-9"));
        assert!(!e.is_retryable());
        for (code, kind) in [
            (1000, ErrorKind::Timeout),
            (2001, ErrorKind::NotFound),
            (3007, ErrorKind::RateLimited),
            (4003, ErrorKind::Unauthenticated),
            (6301, ErrorKind::InvalidRequest),
            (9999, ErrorKind::Unexpected),
        ] {
            assert_eq!(fail_kind(code), kind);
        }
        assert_eq!(
            check_status(b"{\"result\":{}}").unwrap_err().kind(),
            ErrorKind::Decode
        );
        assert_eq!(
            check_status(b"<html>").unwrap_err().kind(),
            ErrorKind::Decode
        );
    }

    #[test]
    fn facets_and_vendor_scores() {
        let v = serde_json::json!({"status":"OK","result":{"total":3,"items":[
            {"fields":{"id":"a"},"sortExprValues":["9.5"]},
            {"fields":{"id":"b"},"sortExprValues":["10.0"]},
            {"fields":{"id":"c"},"sortExprValues":[1.0]}],
            "facet":[{"key":"brand","items":[{"value":"X","count":1},{"value":"Y","count":2}]},
                     {"key":"in_stock","items":[{"value":"1","count":3}]}]}});
        let (hits, _, f) = parse_search(&v, &[Facet::Brand, Facet::InStock]).unwrap();
        let s: Vec<f32> = hits.iter().map(|h| h.score).collect();
        assert_eq!(s, [9.5, 9.5, 1.0]);
        assert_eq!(f[0].counts, [("Y".to_string(), 2), ("X".to_string(), 1)]);
        assert_eq!(f[1].counts, [("in_stock".to_string(), 3)]);
    }

    #[test]
    fn documents_carry_filter_fields() {
        let p = Product::new("p1", "Shoe", Money::new(500, Currency::CNY))
            .with_brand("Peakline")
            .with_category(["Sports", "Running"])
            .with_attribute("Color", "Red")
            .with_stock(0);
        let d = document(&p);
        assert_eq!(d["brand_lc"], "peakline");
        assert_eq!(d["cat_path"], json!(["sports", "sports > running"]));
        assert_eq!(d["attrs"], json!(["color=red"]));
        assert_eq!(d["in_stock"], 0);
        assert_eq!(d["cat1"], "Running");
    }
}
