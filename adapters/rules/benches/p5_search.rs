//! P5: keyword search on a seeded 100k-product catalog (English and Chinese titles).
//!
//! Known-item queries of five types (partial title, typo, swapped words, brand + type,
//! Chinese substring); MRR@10 per type and overall, single-threaded p50/p99 latency and index
//! time, next to `bm25s` run on the same corpus and queries (written as JSON lines to a temp
//! folder), interleaved round by round. `bench/p5_search/run.sh` installs the peer and runs
//! this. Environment: `P5_PRODUCTS` (100000), `P5_QUERIES` per type (400), `P5_ROUNDS` (5),
//! `P5_PEER_PYTHON` (the peer's python), `P5_OUT` (the JSON file); diagnostics: `P5_SLOW=1`
//! (slowest queries), `P5_MISSES=1` (queries whose target is not first), `P5_SETTLE=SECS`
//! (pause between indexing and querying).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use merchant_ai::{Currency, Money, Product, SearchRequest};
use merchant_ai_rules::{Catalog, RulesSearcher, SearchConfig};
use serde_json::json;

/// splitmix64: small, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

const BRANDS: &[(&str, &str)] = &[
    ("Peakline", "峰线"),
    ("Swiftfoot", "迅足"),
    ("Ironhearth", "铁心"),
    ("Basics", "基本"),
    ("Urbanstep", "城步"),
    ("Northwind", "北风"),
    ("Bluecrest", "蓝峰"),
    ("Sunharbor", "阳港"),
    ("Mossgrove", "苔林"),
    ("Stonebridge", "石桥"),
    ("Redmaple", "红枫"),
    ("Silverfin", "银鳍"),
    ("Goldleaf", "金叶"),
    ("Tidewater", "潮水"),
    ("Brightpath", "明途"),
    ("Cloudnine", "九云"),
    ("Oakridge", "橡岭"),
    ("Lumina", "光明"),
    ("Everpine", "常松"),
    ("Kitewing", "风筝"),
    ("Harborview", "港景"),
    ("Wildroot", "野根"),
    ("Starforge", "星铸"),
    ("Quillsby", "羽笔"),
    ("Fernhill", "蕨山"),
    ("Cobaltix", "钴蓝"),
    ("Amberly", "琥珀"),
    ("Driftwood", "浮木"),
    ("Pinecone", "松果"),
    ("Velvetta", "丝绒"),
];

const ADJS: &[(&str, &str)] = &[
    ("lightweight", "轻量"),
    ("waterproof", "防水"),
    ("breathable", "透气"),
    ("classic", "经典"),
    ("premium", "高级"),
    ("compact", "紧凑"),
    ("durable", "耐用"),
    ("portable", "便携"),
    ("vintage", "复古"),
    ("ergonomic", "人体工学"),
    ("insulated", "保温"),
    ("foldable", "可折叠"),
    ("wireless", "无线"),
    ("organic", "有机"),
    ("slim", "修身"),
    ("oversized", "宽松"),
    ("adjustable", "可调节"),
    ("rechargeable", "充电"),
    ("professional", "专业"),
    ("kids", "儿童"),
];

const COLORS: &[(&str, &str)] = &[
    ("black", "黑色"),
    ("white", "白色"),
    ("red", "红色"),
    ("blue", "蓝色"),
    ("green", "绿色"),
    ("grey", "灰色"),
    ("navy", "藏青"),
    ("pink", "粉色"),
    ("beige", "米色"),
    ("olive", "橄榄绿"),
];

const MATERIALS: &[(&str, &str)] = &[
    ("cotton", "棉质"),
    ("leather", "皮革"),
    ("steel", "钢制"),
    ("bamboo", "竹制"),
    ("wool", "羊毛"),
    ("nylon", "尼龙"),
    ("ceramic", "陶瓷"),
    ("aluminium", "铝合金"),
];

/// (English type, Chinese type, category path)
const TYPES: &[(&str, &str, [&str; 2])] = &[
    ("trail running shoes", "越野跑鞋", ["Sports", "Shoes"]),
    ("road running shoes", "公路跑鞋", ["Sports", "Shoes"]),
    ("hiking boots", "登山靴", ["Sports", "Shoes"]),
    ("sneakers", "运动鞋", ["Clothing", "Shoes"]),
    ("sandals", "凉鞋", ["Clothing", "Shoes"]),
    ("t-shirt", "T恤", ["Clothing", "Tops"]),
    ("hoodie", "连帽衫", ["Clothing", "Tops"]),
    ("rain jacket", "雨衣", ["Clothing", "Outerwear"]),
    ("down jacket", "羽绒服", ["Clothing", "Outerwear"]),
    ("yoga pants", "瑜伽裤", ["Clothing", "Bottoms"]),
    ("backpack", "背包", ["Sports", "Bags"]),
    ("duffel bag", "旅行包", ["Sports", "Bags"]),
    ("water bottle", "水壶", ["Sports", "Accessories"]),
    ("frying pan", "平底锅", ["Home", "Kitchen"]),
    ("chef knife", "厨师刀", ["Home", "Kitchen"]),
    ("tea kettle", "烧水壶", ["Home", "Kitchen"]),
    ("coffee grinder", "咖啡研磨机", ["Home", "Kitchen"]),
    ("desk lamp", "台灯", ["Home", "Lighting"]),
    ("office chair", "办公椅", ["Home", "Furniture"]),
    ("bookshelf", "书架", ["Home", "Furniture"]),
    ("bluetooth speaker", "蓝牙音箱", ["Electronics", "Audio"]),
    ("headphones", "耳机", ["Electronics", "Audio"]),
    ("power bank", "充电宝", ["Electronics", "Accessories"]),
    ("smart watch", "智能手表", ["Electronics", "Wearables"]),
    ("phone case", "手机壳", ["Electronics", "Accessories"]),
    ("camping tent", "帐篷", ["Sports", "Camping"]),
    ("sleeping bag", "睡袋", ["Sports", "Camping"]),
    ("bath towel", "浴巾", ["Home", "Bath"]),
    ("pillow", "枕头", ["Home", "Bedding"]),
    ("wallet", "钱包", ["Clothing", "Accessories"]),
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "ve", "ra", "zen", "tor", "mi", "sal", "dor", "qui", "ne", "vax", "lu", "ren",
    "sol", "tri", "mar", "zo", "fel", "kin", "bra", "do", "ix", "ur",
];

const ZH_MODEL_CHARS: &[&str] = &[
    "星", "岚", "锋", "翼", "川", "曜", "澜", "峻", "朗", "逸", "辰", "霆", "瑞", "晨", "悦", "熙",
    "凌", "云", "渊", "拓", "岳", "啸", "琳", "璟", "骁", "旭", "铭", "航", "宸", "墨", "沐", "弈",
    "野", "极", "驰", "越", "捷", "影", "风", "雷", "森", "海", "湾", "峡", "泉", "溪", "珀", "玄",
];

const FILLER: &[&str] = &[
    "everyday",
    "comfort",
    "quality",
    "design",
    "made",
    "for",
    "outdoor",
    "home",
    "travel",
    "use",
    "with",
    "soft",
    "strong",
    "easy",
    "care",
    "gift",
    "season",
    "new",
    "collection",
    "warranty",
];

struct Item {
    product: Product,
    brand: usize,
    model: String,
    adj: usize,
    color: usize,
    material: Option<usize>,
    ty: usize,
    zh_title: String,
    zh_model_at: (usize, usize),
}

fn generate(n: usize, seed: u64) -> Vec<Item> {
    let mut rng = Rng(seed);
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let brand = rng.below(BRANDS.len());
            let adj = rng.below(ADJS.len());
            let color = rng.below(COLORS.len());
            let material = rng.chance(0.6).then(|| rng.below(MATERIALS.len()));
            let ty = rng.below(TYPES.len());
            let syl = 2 + rng.below(2);
            let mut model = String::new();
            for _ in 0..syl {
                model.push_str(rng.pick::<&str>(SYLLABLES));
            }
            let mut model_title = model.clone();
            if let Some(c) = model_title.get_mut(0..1) {
                c.make_ascii_uppercase();
            }
            let mut words = vec![
                BRANDS[brand].0.to_string(),
                model_title.clone(),
                ADJS[adj].0.to_string(),
                COLORS[color].0.to_string(),
            ];
            if let Some(m) = material {
                words.push(MATERIALS[m].0.to_string());
            }
            words.push(TYPES[ty].0.to_string());
            let title = words.join(" ");
            let zh_model = format!("{}{}", rng.pick(ZH_MODEL_CHARS), rng.pick(ZH_MODEL_CHARS));
            let prefix = BRANDS[brand].1.to_string();
            let zh_model_at = (
                prefix.chars().count(),
                prefix.chars().count() + zh_model.chars().count(),
            );
            let zh_title = format!(
                "{}{}{}{}{}{}",
                prefix,
                zh_model,
                ADJS[adj].1,
                COLORS[color].1,
                material.map(|m| MATERIALS[m].1).unwrap_or(""),
                TYPES[ty].1
            );
            let desc: Vec<&str> = (0..8).map(|_| *rng.pick(FILLER)).collect();
            let mut p = Product::new(
                format!("sku-{i:06}"),
                title,
                Money::new(1000 + rng.below(100_000) as i64, Currency::CNY),
            )
            .with_brand(BRANDS[brand].0)
            .with_category(TYPES[ty].2)
            .with_description(desc.join(" "))
            .with_attribute("color", COLORS[color].0)
            .with_stock(rng.below(50) as u32)
            .with_localized_title("zh", zh_title.clone())
            .with_created_at(t0 + chrono::Duration::minutes(rng.below(500_000) as i64));
            if let Some(m) = material {
                p = p.with_attribute("material", MATERIALS[m].0);
            }
            if rng.chance(0.3) {
                p = p.with_tag(*rng.pick(FILLER));
            }
            Item {
                product: p,
                brand,
                model,
                adj,
                color,
                material,
                ty,
                zh_title,
                zh_model_at,
            }
        })
        .collect()
}

/// One keyboard-style typo: transpose, delete, substitute or double a letter (not the first).
fn typo(rng: &mut Rng, w: &str) -> String {
    let mut c: Vec<char> = w.chars().collect();
    if c.len() < 3 {
        return w.to_string();
    }
    let i = 1 + rng.below(c.len() - 1);
    match rng.below(4) {
        0 if i + 1 < c.len() => c.swap(i, i + 1),
        0 | 1 => {
            c.remove(i);
        }
        2 => {
            let letters: Vec<char> = "abcdefghijklmnopqrstuvwxyz".chars().collect();
            let mut r = *rng.pick(&letters);
            if r == c[i] {
                r = if r == 'z' { 'a' } else { (r as u8 + 1) as char };
            }
            c[i] = r;
        }
        _ => {
            let d = c[i];
            c.insert(i, d);
        }
    }
    c.into_iter().collect()
}

#[derive(Clone)]
struct Query {
    kind: &'static str,
    text: String,
    target: usize,
}

const KINDS: [&str; 5] = ["partial", "typo", "swapped", "brand_type", "zh_substring"];

fn title_words(it: &Item) -> Vec<String> {
    let mut w = vec![ADJS[it.adj].0.to_string(), COLORS[it.color].0.to_string()];
    if let Some(m) = it.material {
        w.push(MATERIALS[m].0.to_string());
    }
    w.extend(TYPES[it.ty].0.split(' ').map(str::to_string));
    w
}

fn make_queries(items: &[Item], per_kind: usize, seed: u64) -> Vec<Query> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for kind in KINDS {
        for _ in 0..per_kind {
            let target = rng.below(items.len());
            let it = &items[target];
            // The model name plus two other words of the title, in title order.
            let partial = |rng: &mut Rng| {
                let mut rest = title_words(it);
                let a = rest.remove(rng.below(rest.len()));
                let b = rest.remove(rng.below(rest.len()));
                let words = title_words(it);
                let mut chosen: Vec<String> =
                    words.into_iter().filter(|w| *w == a || *w == b).collect();
                chosen.insert(0, it.model.clone());
                chosen
            };
            let text = match kind {
                "partial" => partial(&mut rng).join(" "),
                "typo" => {
                    let mut words = partial(&mut rng);
                    let long: Vec<usize> =
                        (0..words.len()).filter(|i| words[*i].len() >= 5).collect();
                    let edits = 1 + rng.below(2);
                    let mut done = 0;
                    for &i in &long {
                        if done < edits && (rng.chance(0.6) || i == *long.last().unwrap_or(&0)) {
                            words[i] = typo(&mut rng, &words[i]);
                            done += 1;
                        }
                    }
                    if done == 0 {
                        words[0] = typo(&mut rng, &words[0]);
                    }
                    words.join(" ")
                }
                "swapped" => {
                    let mut words = partial(&mut rng);
                    words.push(BRANDS[it.brand].0.to_lowercase());
                    // A deterministic shuffle that changes the order.
                    for i in (1..words.len()).rev() {
                        let j = rng.below(i + 1);
                        words.swap(i, j);
                    }
                    if words[0] == it.model {
                        words.rotate_left(1);
                    }
                    words.join(" ")
                }
                "brand_type" => format!(
                    "{} {} {}",
                    BRANDS[it.brand].0.to_lowercase(),
                    it.model,
                    TYPES[it.ty].0
                ),
                _ => {
                    let chars: Vec<char> = it.zh_title.chars().collect();
                    let (ms, me) = it.zh_model_at;
                    let s = ms.saturating_sub(rng.below(3));
                    let e = (me + 1 + rng.below(4)).min(chars.len());
                    chars[s..e].iter().collect()
                }
            };
            out.push(Query { kind, text, target });
        }
    }
    out
}

fn write_jsonl(dir: &Path, items: &[Item], queries: &[Query]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("corpus.jsonl"))?);
    for it in items {
        let p = &it.product;
        let line = json!({
            "id": p.id.as_str(),
            "title": p.title,
            "title_zh": it.zh_title,
            "brand": p.brand,
            "category": p.category,
            "tags": p.tags,
            "attributes": p.attributes.values().collect::<Vec<_>>(),
            "description": p.description,
        });
        writeln!(f, "{line}")?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("queries.jsonl"))?);
    for q in queries {
        let line =
            json!({"type": q.kind, "query": q.text, "target": items[q.target].product.id.as_str()});
        writeln!(f, "{line}")?;
    }
    Ok(())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    percentile(&mut v, 0.5)
}

struct Round {
    index_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    mrr: BTreeMap<String, f64>,
}

fn ours_round(items: &[Item], queries: &[Query]) -> Round {
    let products: Vec<Product> = items.iter().map(|i| i.product.clone()).collect();
    let s = RulesSearcher::new("rules", SearchConfig::default(), Arc::new(Catalog::new()))
        .expect("searcher");
    let t = Instant::now();
    let r = s.upsert_sync(products).expect("upsert");
    let index_s = t.elapsed().as_secs_f64();
    assert_eq!(r.applied, items.len());
    eprintln!("p5: {s:?}");
    let reqs: Vec<SearchRequest> = queries
        .iter()
        .map(|q| SearchRequest::new(q.text.clone()))
        .collect();
    if let Some(secs) = std::env::var("P5_SETTLE").ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
    // Warm-up.
    for r in reqs.iter().take(200) {
        s.search_sync(r).expect("search");
    }
    let mut lat = Vec::with_capacity(reqs.len());
    let mut rr: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for (q, req) in queries.iter().zip(&reqs) {
        let t = Instant::now();
        let resp = s.search_sync(req).expect("search");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        let target = &items[q.target].product.id;
        let rank = resp.hits.iter().position(|h| &h.product_id == target);
        let v = rank.map_or(0.0, |r| 1.0 / (r + 1) as f64);
        if std::env::var_os("P5_MISSES").is_some() && rank != Some(0) {
            let top = resp.hits.first().and_then(|h| h.product.as_ref());
            eprintln!(
                "miss {} {:?} rank {:?} target {:?} top {:?} (total {})",
                q.kind,
                q.text,
                rank.map(|r| r + 1),
                items[q.target].product.title,
                top.map(|p| p.title.clone()),
                resp.total
            );
        }
        for k in [q.kind, "overall"] {
            let e = rr.entry(k.to_string()).or_insert((0.0, 0));
            e.0 += v;
            e.1 += 1;
        }
    }
    if std::env::var_os("P5_SLOW").is_some() {
        let mut idx: Vec<usize> = (0..lat.len()).collect();
        idx.sort_by(|a, b| lat[*b].total_cmp(&lat[*a]));
        for i in idx.into_iter().take(15) {
            eprintln!(
                "slow {:.3} ms {} {:?}",
                lat[i], queries[i].kind, queries[i].text
            );
        }
    }
    Round {
        index_s,
        p50_ms: percentile(&mut lat.clone(), 0.5),
        p99_ms: percentile(&mut lat, 0.99),
        mrr: rr
            .into_iter()
            .map(|(k, (s, n))| (k, s / n as f64))
            .collect(),
    }
}

fn peer_round(
    python: &Path,
    script: &Path,
    dir: &Path,
) -> Result<(Round, serde_json::Value), String> {
    let out = Command::new(python)
        .arg(script)
        .arg(dir)
        .env("OMP_NUM_THREADS", "1")
        .env("NUMBA_NUM_THREADS", "1")
        .env("MKL_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap_or(b""),
    )
    .map_err(|e| format!("peer output unreadable: {e}"))?;
    let f = |k: &str| v[k].as_f64().ok_or(format!("peer output lacks {k}"));
    let mrr = v["mrr"]
        .as_object()
        .ok_or("peer output lacks mrr")?
        .iter()
        .map(|(k, x)| (k.clone(), x.as_f64().unwrap_or(f64::NAN)))
        .collect();
    Ok((
        Round {
            index_s: f("index_s")?,
            p50_ms: f("p50_ms")?,
            p99_ms: f("p99_ms")?,
            mrr,
        },
        v,
    ))
}

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let n = env_usize("P5_PRODUCTS", 100_000);
    let per_kind = env_usize("P5_QUERIES", 400);
    let rounds = env_usize("P5_ROUNDS", 5).max(1);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let script = root.join("bench/p5_search/bm25s_peer.py");
    let python = std::env::var("P5_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/merchant-ai/venv-bm25s/bin/python")
        });
    let out_path = std::env::var("P5_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/p5_search.json"));

    let t = Instant::now();
    let items = generate(n, 0x5EED_0005);
    let queries = make_queries(&items, per_kind, 0x5EED_0105);
    let dir = std::env::temp_dir().join(format!("merchant-ai-p5-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| write_jsonl(&dir, &items, &queries))
    {
        println!("search: cannot write the corpus to {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "p5: {n} products, {} queries ({per_kind} per type), generated in {:.1}s, data in {}",
        queries.len(),
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    eprintln!("p5: threads: ours 1 (search), peer OMP/NUMBA/MKL/OPENBLAS_NUM_THREADS=1");

    let mut ours = Vec::new();
    let mut peer = Vec::new();
    let mut peer_info = serde_json::Value::Null;
    let mut peer_error = None;
    for round in 0..rounds {
        let o = ours_round(&items, &queries);
        eprintln!(
            "p5 round {}: ours index {:.2}s p50 {:.3} ms p99 {:.3} ms MRR@10 {:.3}",
            round + 1,
            o.index_s,
            o.p50_ms,
            o.p99_ms,
            o.mrr["overall"]
        );
        ours.push(o);
        if peer_error.is_none() {
            if !python.exists() || !script.exists() {
                peer_error = Some(format!(
                    "bm25s peer not found ({} / {}); run bench/p5_search/run.sh",
                    python.display(),
                    script.display()
                ));
            } else {
                match peer_round(&python, &script, &dir) {
                    Ok((p, info)) => {
                        eprintln!(
                            "p5 round {}: bm25s index {:.2}s p50 {:.3} ms p99 {:.3} ms MRR@10 {:.3}",
                            round + 1,
                            p.index_s,
                            p.p50_ms,
                            p.p99_ms,
                            p.mrr.get("overall").copied().unwrap_or(f64::NAN)
                        );
                        peer.push(p);
                        peer_info = info;
                    }
                    Err(e) => peer_error = Some(e),
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let med =
        |rs: &[Round], f: &dyn Fn(&Round) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
    let mrr_of = |rs: &[Round]| -> BTreeMap<String, f64> {
        rs.first().map(|r| r.mrr.clone()).unwrap_or_default()
    };
    let ratios: Vec<f64> = ours
        .iter()
        .zip(&peer)
        .map(|(o, p)| p.p50_ms / o.p50_ms)
        .collect();
    let summary = json!({
        "benchmark": "P5 search",
        "products": n,
        "queries_per_type": per_kind,
        "rounds": rounds,
        "seed": {"catalog": 0x5EED_0005u64, "queries": 0x5EED_0105u64},
        "threads": {"ours_search": 1, "peer": 1},
        "ours": {
            "name": "merchant-ai-rules",
            "version": env!("CARGO_PKG_VERSION"),
            "engine": "tantivy 0.27",
            "mrr_at_10": mrr_of(&ours),
            "index_s": ours.iter().map(|r| r.index_s).collect::<Vec<_>>(),
            "p50_ms": ours.iter().map(|r| r.p50_ms).collect::<Vec<_>>(),
            "p99_ms": ours.iter().map(|r| r.p99_ms).collect::<Vec<_>>(),
        },
        "peer": {
            "name": "bm25s",
            "info": peer_info,
            "mrr_at_10": mrr_of(&peer),
            "index_s": peer.iter().map(|r| r.index_s).collect::<Vec<_>>(),
            "p50_ms": peer.iter().map(|r| r.p50_ms).collect::<Vec<_>>(),
            "p99_ms": peer.iter().map(|r| r.p99_ms).collect::<Vec<_>>(),
            "error": peer_error,
        },
        "p50_ratio_peer_over_ours": ratios,
    });
    if let Some(parent) = out_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(
        &out_path,
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    );

    let om = mrr_of(&ours);
    let pm = mrr_of(&peer);
    eprintln!("p5: MRR@10 by type (ours vs bm25s):");
    for k in KINDS.iter().chain(["overall"].iter()) {
        eprintln!(
            "  {k:<13} {:.3} vs {}",
            om.get(*k).copied().unwrap_or(f64::NAN),
            pm.get(*k).map_or("-".to_string(), |v| format!("{v:.3}"))
        );
    }
    eprintln!(
        "p5: ours index {:.2}s p50 {:.3} ms p99 {:.3} ms (median of {rounds}); raw numbers in {}",
        med(&ours, &|r| r.index_s),
        med(&ours, &|r| r.p50_ms),
        med(&ours, &|r| r.p99_ms),
        out_path.display()
    );
    if let Some(e) = peer_error.filter(|_| peer.len() < rounds) {
        println!(
            "search: merchant-ai-rules MRR@10 {:.2}, p50 {:.3} ms; {e}",
            om.get("overall").copied().unwrap_or(f64::NAN),
            med(&ours, &|r| r.p50_ms)
        );
        return ExitCode::FAILURE;
    }
    eprintln!(
        "p5: bm25s index {:.2}s p50 {:.3} ms p99 {:.3} ms (median of {rounds})",
        med(&peer, &|r| r.index_s),
        med(&peer, &|r| r.p50_ms),
        med(&peer, &|r| r.p99_ms),
    );
    println!(
        "search: merchant-ai-rules MRR@10 {:.2} vs bm25s {:.2}; p50 {:.3} ms vs {:.3} ms = {:.2}x (median of {rounds})",
        om.get("overall").copied().unwrap_or(f64::NAN),
        pm.get("overall").copied().unwrap_or(f64::NAN),
        med(&ours, &|r| r.p50_ms),
        med(&peer, &|r| r.p50_ms),
        median(&ratios),
    );
    ExitCode::SUCCESS
}
