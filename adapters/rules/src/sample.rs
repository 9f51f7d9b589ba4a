//! A deterministic sample storefront: catalog, shopper events and daily sales.
//!
//! Everything here is synthetic and seeded, so demos, examples, tests and benchmarks see the
//! same data on every machine. Nothing is read from disk or the network.
//!
//! - [`products`]: a catalog across 14 categories with two- and three-level paths
//!   (`Sports > Running > Shoes`, `Grocery > Tea`, ...), brands per category, English titles
//!   built from adjective + material + product type with a matching Chinese title in
//!   `localized["zh"]`, descriptions, attributes (`material`, and `colour` and `size` where they apply),
//!   tags, prices in CNY minor units realistic per category, costs (margins 20-60%), stock
//!   (about 8% sold out), listing dates and `example.com` image URLs.
//! - [`events`]: about 2,000 pseudonymous shoppers (`u_0001`, ...) browsing in sessions over
//!   the 90 days before [`base_date`]: views, add-to-cart and purchases, with complementary
//!   co-purchases (running shoes with socks, tea with teapots, phones with cases).
//! - [`daily_sales`]: daily unit sales per product with weekly seasonality, a trend and
//!   promotion spikes; slow sellers (expensive items, and every fourth series) are
//!   intermittent, with many zero days.
//!
//! ```
//! use merchant_ai_rules::sample;
//! let products = sample::products(600, sample::DEFAULT_SEED);
//! assert_eq!(products.len(), 600);
//! assert!(products[0].localized.contains_key("zh"));
//! let events = sample::events(&products, sample::DEFAULT_SEED);
//! assert!(events.len() > 10_000);
//! let sales = sample::daily_sales(&products[..3], 180, sample::DEFAULT_SEED);
//! assert_eq!(sales[0].values.len(), 180);
//! ```

use std::collections::BTreeMap;

use merchant_ai::chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use merchant_ai::{Currency, Event, EventKind, Frequency, LocalizedText, Money, Product, Series};

/// The seed the CLI demo and the examples use.
pub const DEFAULT_SEED: u64 = 42;

/// The catalog size the CLI demo and the examples use.
pub const DEFAULT_PRODUCTS: usize = 600;

/// Number of shoppers [`events`] simulates.
pub const SUBJECTS: usize = 2_000;

/// Days of history [`events`] covers (ending at [`base_date`]).
pub const EVENT_DAYS: i64 = 90;

/// The fixed "today" of the sample data (2026-01-01T00:00:00Z): events and sales end here,
/// products were listed before it.
pub fn base_date() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// SplitMix64: small, fast, good enough for synthetic data, identical on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n); 0 when n is 0.
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    /// Uniform in [lo, hi].
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1).max(1) as usize) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// A Poisson draw (Knuth below 30, rounded normal above).
    fn poisson(&mut self, lambda: f64) -> f64 {
        if lambda <= 0.0 {
            return 0.0;
        }
        if lambda > 30.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0);
        }
        let l = (-lambda).exp();
        let mut k = 0.0;
        let mut p = 1.0;
        loop {
            p *= self.f64();
            if p <= l {
                return k;
            }
            k += 1.0;
        }
    }
}

/// An English word or phrase and its Chinese counterpart.
type Word = (&'static str, &'static str);

struct Category {
    path: &'static [&'static str],
    zh_path: &'static [&'static str],
    brands: &'static [&'static str],
    types: &'static [Word],
    adjectives: &'static [Word],
    materials: &'static [Word],
    sizes: &'static [&'static str],
    /// Price range in whole yuan.
    price: (u32, u32),
    /// Indices of categories bought together with this one.
    complements: &'static [usize],
}

const COLOURS: &[Word] = &[
    ("Black", "黑色"),
    ("White", "白色"),
    ("Navy", "藏青色"),
    ("Grey", "灰色"),
    ("Red", "红色"),
    ("Green", "绿色"),
    ("Blue", "蓝色"),
    ("Beige", "米色"),
];

const CATEGORIES: &[Category] = &[
    // 0
    Category {
        path: &["Sports", "Running", "Shoes"],
        zh_path: &["运动", "跑步", "跑鞋"],
        brands: &["Peakline", "Stridex", "Aerorun"],
        types: &[
            ("Trail Running Shoe", "越野跑鞋"),
            ("Road Running Shoe", "公路跑鞋"),
            ("Racing Flat", "竞速跑鞋"),
            ("Walking Shoe", "健步鞋"),
        ],
        adjectives: &[
            ("Lightweight", "轻量"),
            ("Cushioned", "缓震"),
            ("Breathable", "透气"),
            ("Waterproof", "防水"),
        ],
        materials: &[("Mesh", "网面"), ("Knit", "针织")],
        sizes: &["38", "39", "40", "41", "42", "43", "44", "45"],
        price: (299, 1299),
        complements: &[1],
    },
    // 1
    Category {
        path: &["Sports", "Running", "Accessories"],
        zh_path: &["运动", "跑步", "配件"],
        brands: &["Peakline", "Stridex", "Trailmate"],
        types: &[
            ("Running Socks", "跑步袜"),
            ("Sports Headband", "运动头带"),
            ("Running Belt", "跑步腰包"),
            ("Compression Sleeve", "压缩护腿"),
            ("Sports Water Bottle", "运动水壶"),
        ],
        adjectives: &[
            ("Quick-Dry", "速干"),
            ("Anti-Slip", "防滑"),
            ("Reflective", "反光"),
            ("Seamless", "无缝"),
        ],
        materials: &[
            ("Merino Wool", "美利奴羊毛"),
            ("Nylon", "尼龙"),
            ("Cotton", "棉质"),
        ],
        sizes: &["S", "M", "L"],
        price: (29, 199),
        complements: &[0, 2],
    },
    // 2
    Category {
        path: &["Sports", "Fitness", "Yoga"],
        zh_path: &["运动", "健身", "瑜伽"],
        brands: &["Lotusfit", "Corebalance"],
        types: &[
            ("Yoga Mat", "瑜伽垫"),
            ("Yoga Block", "瑜伽砖"),
            ("Resistance Band", "弹力带"),
            ("Foam Roller", "泡沫轴"),
        ],
        adjectives: &[
            ("Non-Slip", "防滑"),
            ("Extra Thick", "加厚"),
            ("Eco-Friendly", "环保"),
            ("Portable", "便携"),
        ],
        materials: &[
            ("TPE", "TPE"),
            ("Natural Rubber", "天然橡胶"),
            ("Cork", "软木"),
        ],
        sizes: &[],
        price: (39, 399),
        complements: &[1],
    },
    // 3
    Category {
        path: &["Home", "Kitchen", "Cookware"],
        zh_path: &["家居", "厨房", "锅具"],
        brands: &["Ironhearth", "Chefmate", "Kitchora"],
        types: &[
            ("Frying Pan", "煎锅"),
            ("Stock Pot", "汤锅"),
            ("Wok", "炒锅"),
            ("Saucepan", "奶锅"),
            ("Dutch Oven", "珐琅锅"),
        ],
        adjectives: &[
            ("Professional", "专业"),
            ("Induction-Ready", "电磁炉适用"),
            ("Classic", "经典"),
            ("Healthy", "健康"),
        ],
        materials: &[
            ("Cast Iron", "铸铁"),
            ("Stainless Steel", "不锈钢"),
            ("Nonstick", "不粘"),
        ],
        sizes: &["20cm", "24cm", "28cm", "32cm"],
        price: (89, 899),
        complements: &[4],
    },
    // 4
    Category {
        path: &["Home", "Kitchen", "Teaware"],
        zh_path: &["家居", "厨房", "茶具"],
        brands: &["Jadeleaf", "Qingci", "Kitchora"],
        types: &[
            ("Teapot", "茶壶"),
            ("Tea Cup Set", "茶杯套装"),
            ("Gaiwan", "盖碗"),
            ("Tea Tray", "茶盘"),
            ("Tea Infuser", "滤茶器"),
        ],
        adjectives: &[
            ("Handmade", "手工"),
            ("Traditional", "传统"),
            ("Minimalist", "简约"),
            ("Heat-Resistant", "耐热"),
        ],
        materials: &[
            ("Porcelain", "陶瓷"),
            ("Yixing Clay", "紫砂"),
            ("Glass", "玻璃"),
        ],
        sizes: &[],
        price: (49, 699),
        complements: &[12, 13],
    },
    // 5
    Category {
        path: &["Home", "Bedding"],
        zh_path: &["家居", "床上用品"],
        brands: &["Dreamloom", "Softnest"],
        types: &[
            ("Duvet Cover", "被套"),
            ("Pillow", "枕头"),
            ("Sheet Set", "床单套装"),
            ("Weighted Blanket", "重力毯"),
        ],
        adjectives: &[
            ("Breathable", "透气"),
            ("Hypoallergenic", "防过敏"),
            ("Luxury", "奢华"),
            ("Cooling", "凉感"),
        ],
        materials: &[("Cotton", "纯棉"), ("Silk", "真丝"), ("Linen", "亚麻")],
        sizes: &["Single", "Double", "Queen", "King"],
        price: (99, 1299),
        complements: &[5],
    },
    // 6
    Category {
        path: &["Electronics", "Audio", "Headphones"],
        zh_path: &["数码", "音频", "耳机"],
        brands: &["Sonora", "Auralux", "Beatwave"],
        types: &[
            ("Noise Cancelling Headphones", "降噪耳机"),
            ("Wireless Headphones", "无线耳机"),
            ("True Wireless Earbuds", "真无线耳机"),
            ("Sports Earbuds", "运动耳机"),
        ],
        adjectives: &[
            ("Pro", "专业版"),
            ("Compact", "小巧"),
            ("Bass Boost", "重低音"),
            ("Studio", "录音室级"),
        ],
        materials: &[("Bluetooth 5.3", "蓝牙5.3"), ("Hi-Res", "高解析")],
        sizes: &[],
        price: (199, 2999),
        complements: &[8],
    },
    // 7
    Category {
        path: &["Electronics", "Phones", "Smartphones"],
        zh_path: &["数码", "手机", "智能手机"],
        brands: &["Novaphone", "Lumi", "Orbit"],
        types: &[("Smartphone", "智能手机"), ("Camera Phone", "影像手机")],
        adjectives: &[
            ("5G", "5G"),
            ("Pro", "专业版"),
            ("Lite", "轻薄版"),
            ("Ultra", "旗舰版"),
        ],
        materials: &[("128GB", "128GB"), ("256GB", "256GB"), ("512GB", "512GB")],
        sizes: &[],
        price: (999, 6999),
        complements: &[8, 6],
    },
    // 8
    Category {
        path: &["Electronics", "Phones", "Accessories"],
        zh_path: &["数码", "手机", "配件"],
        brands: &["Guardix", "Voltix", "Lumi"],
        types: &[
            ("Phone Case", "手机壳"),
            ("Screen Protector", "钢化膜"),
            ("Fast Charger", "快充充电器"),
            ("Charging Cable", "充电线"),
            ("Power Bank", "充电宝"),
        ],
        adjectives: &[
            ("Shockproof", "防摔"),
            ("Slim", "超薄"),
            ("Magnetic", "磁吸"),
            ("Durable", "耐用"),
        ],
        materials: &[
            ("Silicone", "硅胶"),
            ("Leather", "皮革"),
            ("Tempered Glass", "钢化玻璃"),
        ],
        sizes: &[],
        price: (19, 299),
        complements: &[7],
    },
    // 9
    Category {
        path: &["Beauty", "Skincare"],
        zh_path: &["美妆", "护肤"],
        brands: &["Herbaura", "Purelab", "Lumiere"],
        types: &[
            ("Moisturizer", "保湿霜"),
            ("Facial Cleanser", "洗面奶"),
            ("Serum", "精华液"),
            ("Sunscreen", "防晒霜"),
            ("Sheet Mask", "面膜"),
        ],
        adjectives: &[
            ("Hydrating", "补水"),
            ("Gentle", "温和"),
            ("Brightening", "亮肤"),
            ("Soothing", "舒缓"),
        ],
        materials: &[
            ("Hyaluronic Acid", "玻尿酸"),
            ("Green Tea", "绿茶"),
            ("Vitamin C", "维C"),
            ("Centella", "积雪草"),
        ],
        sizes: &["30ml", "50ml", "100ml"],
        price: (59, 599),
        complements: &[10],
    },
    // 10
    Category {
        path: &["Beauty", "Makeup"],
        zh_path: &["美妆", "彩妆"],
        brands: &["Rougette", "Lumiere"],
        types: &[
            ("Lipstick", "口红"),
            ("Foundation", "粉底液"),
            ("Mascara", "睫毛膏"),
            ("Eyeshadow Palette", "眼影盘"),
        ],
        adjectives: &[
            ("Long-Lasting", "持久"),
            ("Matte", "哑光"),
            ("Waterproof", "防水"),
            ("Radiant", "亮泽"),
        ],
        materials: &[("Velvet", "丝绒"), ("Satin", "缎面")],
        sizes: &[],
        price: (79, 499),
        complements: &[9],
    },
    // 11
    Category {
        path: &["Kids", "Toys"],
        zh_path: &["母婴", "玩具"],
        brands: &["Brickly", "Playnest"],
        types: &[
            ("Building Blocks", "积木"),
            ("Jigsaw Puzzle", "拼图"),
            ("Plush Toy", "毛绒玩具"),
            ("Wooden Train Set", "木制小火车"),
        ],
        adjectives: &[
            ("Educational", "益智"),
            ("Colourful", "多彩"),
            ("Classic", "经典"),
            ("Creative", "创意"),
        ],
        materials: &[
            ("Wooden", "木质"),
            ("Plastic", "塑料"),
            ("Soft Cotton", "柔软棉"),
        ],
        sizes: &[],
        price: (49, 599),
        complements: &[11],
    },
    // 12
    Category {
        path: &["Grocery", "Tea"],
        zh_path: &["食品", "茶叶"],
        brands: &["Jadeleaf", "Mistpeak", "Cloudridge"],
        types: &[
            ("Green Tea", "绿茶"),
            ("Oolong Tea", "乌龙茶"),
            ("Pu'er Tea", "普洱茶"),
            ("Black Tea", "红茶"),
            ("Jasmine Tea", "茉莉花茶"),
        ],
        adjectives: &[
            ("Organic", "有机"),
            ("Premium", "特级"),
            ("Spring Harvest", "春采"),
            ("Aged", "陈年"),
        ],
        materials: &[
            ("Loose Leaf", "散装"),
            ("Tea Bags", "袋泡"),
            ("Gift Box", "礼盒"),
        ],
        sizes: &["100g", "250g", "500g"],
        price: (35, 300),
        complements: &[4],
    },
    // 13
    Category {
        path: &["Grocery", "Coffee"],
        zh_path: &["食品", "咖啡"],
        brands: &["Beanhaus", "Cloudridge"],
        types: &[
            ("Coffee Beans", "咖啡豆"),
            ("Ground Coffee", "咖啡粉"),
            ("Drip Coffee Bags", "挂耳咖啡"),
        ],
        adjectives: &[
            ("Dark Roast", "深烘"),
            ("Medium Roast", "中烘"),
            ("Single Origin", "单一产地"),
            ("Organic", "有机"),
        ],
        materials: &[("Arabica", "阿拉比卡"), ("Yunnan", "云南")],
        sizes: &["250g", "500g", "1kg"],
        price: (39, 259),
        complements: &[4],
    },
];

/// Generates `n` products, deterministic for a given `seed`.
///
/// Ids are `sku-00001` .. in order; categories rotate so any `n >= 14` covers all of them,
/// and `sku-00001` is always a pair of running shoes. Every product passes
/// [`Product::validate`], has a Chinese title in `localized["zh"]`, a CNY price and cost.
pub fn products(n: usize, seed: u64) -> Vec<Product> {
    let mut rng = Rng::new(seed, 1);
    let base = base_date();
    (0..n)
        .map(|i| {
            let cat = &CATEGORIES[i % CATEGORIES.len()];
            make_product(i, cat, &mut rng, base)
        })
        .collect()
}

fn make_product(i: usize, cat: &Category, rng: &mut Rng, base: DateTime<Utc>) -> Product {
    let id = format!("sku-{:05}", i + 1);
    let brand = *rng.pick(cat.brands);
    let (ty, ty_zh) = *rng.pick(cat.types);
    let (adj, adj_zh) = *rng.pick(cat.adjectives);
    let (mat, mat_zh) = *rng.pick(cat.materials);
    let (col, col_zh) = *rng.pick(COLOURS);
    // Food and skincare come without a colour.
    let coloured = cat.path[0] != "Grocery" && cat.path[0..2] != ["Beauty", "Skincare"];
    let (title, title_zh) = if coloured {
        (
            format!("{brand} {adj} {mat} {ty} ({col})"),
            format!("{brand} {adj_zh}{mat_zh}{ty_zh}（{col_zh}）"),
        )
    } else {
        (
            format!("{brand} {adj} {mat} {ty}"),
            format!("{brand} {adj_zh}{mat_zh}{ty_zh}"),
        )
    };
    let (colour_en, colour_zh) = if coloured {
        (
            format!(" Colour: {}.", col.to_lowercase()),
            format!("颜色：{col_zh}。"),
        )
    } else {
        (String::new(), String::new())
    };
    let description = format!(
        "{adj} {ty_lower} by {brand}, made with {mat_lower}.{colour_en} Part of our {cat_lower} range.",
        ty_lower = ty.to_lowercase(),
        mat_lower = mat.to_lowercase(),
        cat_lower = cat.path.join(" ").to_lowercase(),
    );
    let description_zh = format!(
        "{brand}出品的{adj_zh}{ty_zh}，采用{mat_zh}。{colour_zh}{}系列。",
        cat.zh_path.join("")
    );

    // Log-uniform price within the category range, ending in 9 yuan.
    let (lo, hi) = (cat.price.0 as f64, cat.price.1 as f64);
    let raw = (lo.ln() + rng.f64() * (hi.ln() - lo.ln())).exp();
    let yuan = if raw >= 100.0 {
        ((raw / 10.0).round() * 10.0 - 1.0).max(lo)
    } else {
        (raw.round() - 0.1).max(lo)
    };
    let price_minor = (yuan * 100.0).round() as i64;
    let margin = 0.20 + rng.f64() * 0.40;
    let cost_minor = (price_minor as f64 * (1.0 - margin)).round() as i64;
    let stock = if rng.chance(0.08) {
        0
    } else {
        rng.range(1, 500) as u32
    };
    let created = base - Duration::days(rng.range(1, 540)) - Duration::minutes(rng.range(0, 1439));

    let mut p = Product::new(id.clone(), title, Money::new(price_minor, Currency::CNY))
        .with_description(description)
        .with_brand(brand)
        .with_category(cat.path.iter().copied())
        .with_cost(Money::new(cost_minor, Currency::CNY))
        .with_stock(stock)
        .with_language("en")
        .with_created_at(created)
        .with_attribute("material", mat)
        .with_tag(cat.path[cat.path.len() - 1].to_lowercase())
        .with_tag(adj.to_lowercase())
        .with_image_url(format!("https://example.com/images/{id}.jpg"))
        .with_image_url(format!("https://example.com/images/{id}-2.jpg"))
        .with_localized(
            "zh",
            LocalizedText::new(title_zh).with_description(description_zh),
        );
    if coloured {
        p = p.with_attribute("colour", col);
    }
    if !cat.sizes.is_empty() {
        p = p.with_attribute("size", *rng.pick(cat.sizes));
    }
    if rng.chance(0.12) {
        p = p.with_tag("bestseller");
    }
    if base - created < Duration::days(30) {
        p = p.with_tag("new");
    }
    p
}

/// The index into `CATEGORIES` of a product, by its category path.
fn category_index(p: &Product) -> Option<usize> {
    CATEGORIES.iter().position(|c| {
        c.path.len() == p.category.len() && c.path.iter().zip(&p.category).all(|(a, b)| a == b)
    })
}

/// Weighted sampling over product indices of one category.
struct Pool {
    items: Vec<usize>,
    cumulative: Vec<f64>,
}

impl Pool {
    fn sample(&self, rng: &mut Rng) -> Option<usize> {
        let total = *self.cumulative.last()?;
        let x = rng.f64() * total;
        let i = self.cumulative.partition_point(|c| *c <= x);
        self.items.get(i.min(self.items.len() - 1)).copied()
    }
}

/// Generates shopper sessions over the [`EVENT_DAYS`] days before [`base_date`], in time order.
///
/// [`SUBJECTS`] shoppers (`u_0001` ..), each with one or two favourite categories and one to
/// six sessions (`s_000001` ..). A session views a few products of one category (popular
/// products more often), may add one to the cart and buy it; a purchase often comes with an
/// item of a complementary category in the same session (shoes and socks, tea and teaware,
/// phones and cases), which gives co-purchase structure to learn from. Every shopper has at
/// least one view. Products outside the sample categories are ignored; with no products the
/// result is empty.
pub fn events(products: &[Product], seed: u64) -> Vec<Event> {
    let mut rng = Rng::new(seed, 2);
    // Per-category pools with Zipf-like popularity over a seeded rank.
    let mut by_cat: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, p) in products.iter().enumerate() {
        if let Some(c) = category_index(p) {
            by_cat.entry(c).or_default().push(i);
        }
    }
    let mut pools: Vec<Option<Pool>> = (0..CATEGORIES.len()).map(|_| None).collect();
    for (c, items) in by_cat {
        let mut acc = 0.0;
        let cumulative = items
            .iter()
            .map(|_| {
                let rank = rng.below(items.len()) as f64;
                acc += 1.0 / (rank + 3.0).powf(0.9);
                acc
            })
            .collect();
        pools[c] = Some(Pool { items, cumulative });
    }
    let available: Vec<usize> = (0..CATEGORIES.len())
        .filter(|c| pools[*c].is_some())
        .collect();
    if available.is_empty() {
        return Vec::new();
    }

    let start = base_date() - Duration::days(EVENT_DAYS);
    let mut out = Vec::new();
    let mut session_no = 0usize;
    for s in 1..=SUBJECTS {
        let subject = format!("u_{s:04}");
        let fav1 = *rng.pick(&available);
        let fav2 = *rng.pick(&available);
        let sessions = 1 + rng.below(6).min(rng.below(6));
        for _ in 0..sessions {
            session_no += 1;
            let session = format!("s_{session_no:06}");
            let cat = match rng.f64() {
                x if x < 0.55 => fav1,
                x if x < 0.8 => fav2,
                _ => *rng.pick(&available),
            };
            let Some(pool) = pools[cat].as_ref() else {
                continue;
            };
            let mut t = start
                + Duration::days(rng.range(0, EVENT_DAYS - 1))
                + Duration::hours(rng.range(7, 23))
                + Duration::minutes(rng.range(0, 59))
                + Duration::seconds(rng.range(0, 59));
            let step = |rng: &mut Rng| Duration::seconds(rng.range(20, 240));
            let mut viewed = Vec::new();
            for _ in 0..rng.range(1, 6) {
                if let Some(i) = pool.sample(&mut rng) {
                    out.push(ev(&subject, &session, &products[i], EventKind::View, t));
                    viewed.push(i);
                    t += step(&mut rng);
                }
            }
            if viewed.is_empty() || !rng.chance(0.35) {
                continue;
            }
            let chosen = *rng.pick(&viewed);
            out.push(ev(
                &subject,
                &session,
                &products[chosen],
                EventKind::AddToCart,
                t,
            ));
            t += step(&mut rng);
            if !rng.chance(0.6) {
                continue;
            }
            let qty: u32 = if rng.chance(0.1) { 2 } else { 1 };
            out.push(
                ev(
                    &subject,
                    &session,
                    &products[chosen],
                    EventKind::Purchase,
                    t,
                )
                .with_quantity(qty),
            );
            t += step(&mut rng);
            let complements = CATEGORIES[cat].complements;
            if !complements.is_empty() && rng.chance(0.6) {
                let cc = *rng.pick(complements);
                if let Some(extra) = pools[cc].as_ref().and_then(|p| p.sample(&mut rng)) {
                    out.push(ev(&subject, &session, &products[extra], EventKind::View, t));
                    t += step(&mut rng);
                    out.push(ev(
                        &subject,
                        &session,
                        &products[extra],
                        EventKind::AddToCart,
                        t,
                    ));
                    t += step(&mut rng);
                    out.push(ev(
                        &subject,
                        &session,
                        &products[extra],
                        EventKind::Purchase,
                        t,
                    ));
                }
            }
        }
    }
    out.sort_by_key(|e| e.timestamp);
    out
}

fn ev(subject: &str, session: &str, p: &Product, kind: EventKind, t: DateTime<Utc>) -> Event {
    Event::new(subject, p.id.clone(), kind, t).with_session(session)
}

/// Daily unit sales of each product over the `days` days before [`base_date`], one
/// [`Series`] per product, in order, with `id` = the product id, a start date and
/// [`Frequency::Daily`].
///
/// The level falls with the price (tea sells tens a day, phones about one); a weekly pattern
/// peaks at the weekend; a per-product trend drifts the level by up to about +-40% over 180
/// days; a few three-to-five-day promotions roughly double sales; each day is a Poisson draw.
/// Every fourth series (and any slow seller) is intermittent: most days are zero.
pub fn daily_sales(products: &[Product], days: usize, seed: u64) -> Vec<Series> {
    const WEEKLY: [f64; 7] = [0.85, 0.9, 0.92, 0.97, 1.1, 1.35, 1.25]; // Mon..Sun
    let start = base_date() - Duration::days(days as i64);
    products
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let mut rng = Rng::new(seed ^ 0x5A1E, 3 + k as u64);
            let price = p.price.as_major_f64().max(1.0);
            let mut level = 60.0 / (1.0 + price / 40.0);
            if k % 4 == 3 {
                level = level.min(0.4);
            }
            let trend = (rng.f64() - 0.35) * 0.004;
            let mut promo = vec![1.0; days];
            let promos = if days >= 30 { 1 + rng.below(3) } else { 0 };
            for _ in 0..promos {
                let at = rng.below(days.saturating_sub(5).max(1));
                let lift = 1.8 + rng.f64() * 0.7;
                for d in promo.iter_mut().skip(at).take(3 + rng.below(3)) {
                    *d = lift;
                }
            }
            let values = (0..days)
                .map(|d| {
                    let date = start + Duration::days(d as i64);
                    let wd = date.weekday().num_days_from_monday() as usize;
                    let t = (1.0 + trend * d as f64).max(0.1);
                    rng.poisson(level * WEEKLY[wd] * t * promo[d])
                })
                .collect();
            Series::new(p.id.as_str(), values).with_start(start, Frequency::Daily)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap, HashSet};

    #[test]
    fn products_are_deterministic_valid_and_localized() {
        let a = products(DEFAULT_PRODUCTS, DEFAULT_SEED);
        let b = products(DEFAULT_PRODUCTS, DEFAULT_SEED);
        assert!(a == b, "products differ between runs");
        assert!(a != products(DEFAULT_PRODUCTS, 7));
        assert_eq!(a.len(), 600);
        let ids: HashSet<_> = a.iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids.len(), 600);
        let cats: BTreeSet<_> = a.iter().map(|p| p.category_path()).collect();
        assert_eq!(cats.len(), CATEGORIES.len());
        for p in &a {
            p.validate().unwrap();
            let zh = &p.localized["zh"].title;
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{zh}"
            );
            assert_eq!(p.price.currency, Currency::CNY);
            let cost = p.cost.unwrap().minor as f64;
            let m = 1.0 - cost / p.price.minor as f64;
            assert!((0.19..=0.61).contains(&m), "margin {m}");
            assert!(p.brand.is_some() && !p.description.is_empty());
            assert!(p.attributes.contains_key("material"));
            assert!(p.image_urls[0].starts_with("https://example.com/"));
            assert!(p.created_at.unwrap() < base_date());
        }
        assert_eq!(a[0].category_path(), "Sports > Running > Shoes");
        assert!(a.iter().any(|p| p.stock == Some(0)));
        assert!(a.iter().filter(|p| p.in_stock()).count() > 500);
    }

    #[test]
    fn prices_are_realistic_per_category() {
        for p in products(600, 1) {
            let y = p.price.as_major_f64();
            let (lo, hi) = match p.category.last().map(String::as_str) {
                Some("Tea") => (35.0, 300.0),
                Some("Headphones") => (199.0, 2999.0),
                _ => (10.0, 7000.0),
            };
            assert!((lo..=hi).contains(&y), "{} {y}", p.id);
        }
    }

    #[test]
    fn events_are_deterministic_with_sessions_and_copurchases() {
        let ps = products(600, DEFAULT_SEED);
        let a = events(&ps, DEFAULT_SEED);
        assert!(a == events(&ps, DEFAULT_SEED), "events differ between runs");
        let subjects: HashSet<_> = a.iter().map(|e| e.subject.clone()).collect();
        assert_eq!(subjects.len(), SUBJECTS);
        assert!(subjects.contains(&"u_0001".into()));
        let start = base_date() - Duration::days(EVENT_DAYS);
        assert!(
            a.iter()
                .all(|e| e.timestamp >= start && e.timestamp < base_date())
        );
        assert!(a.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        let count = |k| a.iter().filter(|e| e.kind == k).count();
        let (v, c, b) = (
            count(EventKind::View),
            count(EventKind::AddToCart),
            count(EventKind::Purchase),
        );
        assert!(v > c && c > b && b > 1000, "{v} {c} {b}");
        // Shoes bought with running accessories in the same session.
        let cat_of: HashMap<_, _> = ps
            .iter()
            .map(|p| (p.id.clone(), p.category_path()))
            .collect();
        let mut by_session: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in a.iter().filter(|e| e.kind == EventKind::Purchase) {
            by_session
                .entry(e.session.as_deref().unwrap())
                .or_default()
                .push(cat_of[&e.product].as_str());
        }
        let shoes_and_socks = by_session
            .values()
            .filter(|v| {
                v.contains(&"Sports > Running > Shoes")
                    && v.contains(&"Sports > Running > Accessories")
            })
            .count();
        assert!(shoes_and_socks > 20, "{shoes_and_socks}");
        assert!(events(&[], 1).is_empty());
    }

    #[test]
    fn daily_sales_have_shape() {
        let ps = products(40, DEFAULT_SEED);
        let s = daily_sales(&ps, 180, DEFAULT_SEED);
        assert!(s == daily_sales(&ps, 180, DEFAULT_SEED));
        assert_eq!(s.len(), 40);
        for (x, p) in s.iter().zip(&ps) {
            assert_eq!(x.id, p.id.as_str());
            assert_eq!(x.values.len(), 180);
            assert!(x.values.iter().all(|v| v.is_finite() && *v >= 0.0));
            x.validate(28).unwrap();
            assert_eq!(x.frequency, Some(Frequency::Daily));
        }
        // Intermittent series exist: mostly zero days.
        let zeros = |x: &Series| x.values.iter().filter(|v| **v == 0.0).count();
        assert!(zeros(&s[3]) > 90, "{}", zeros(&s[3]));
        // Some fast seller has no zero-heavy history and a weekend peak.
        let fast = s.iter().find(|x| zeros(x) < 20).expect("a fast seller");
        let start = fast.start.unwrap();
        let (mut wkend, mut wk) = (0.0, 0.0);
        for (d, v) in fast.values.iter().enumerate() {
            let wd = (start + Duration::days(d as i64))
                .weekday()
                .num_days_from_monday();
            if wd >= 5 {
                wkend += v / 2.0
            } else {
                wk += v / 5.0
            }
        }
        assert!(wkend > wk, "{wkend} {wk}");
        assert!(daily_sales(&[], 10, 1).is_empty());
    }
}
