//! Alibaba Cloud regions: base URLs and jurisdictions.
//!
//! The region a request goes to is a legal matter: it decides where the data is processed and
//! stored. So it is always explicit in config (`region = "ap-southeast-1"`), never guessed from
//! an API key (a DashScope key belongs to one region; a key sent to another region's host is
//! answered with `401 InvalidApiKey`).
//!
//! - [`Region`] is a DashScope (Model Studio) region: its config id, its native and
//!   OpenAI-compatible base URLs and the [`Jurisdiction`] its data is processed in.
//! - [`Endpoint`] is what an adapter actually calls: a region's host, a workspace-scoped
//!   gateway host, or any host given as an override (a proxy, a private gateway, a mock server
//!   in tests). An override keeps the region's jurisdiction, or takes an explicit one.
//! - [`jurisdiction_of`] maps any Alibaba Cloud region id (also the ones of OpenSearch, AIRec
//!   and PAI, which DashScope does not serve) to its jurisdiction.
//!
//! | id | name | native base | jurisdiction |
//! |---|---|---|---|
//! | `cn-beijing` | China (Beijing) | `https://dashscope.aliyuncs.com/api/v1` | `CN` |
//! | `ap-southeast-1` | Singapore (International) | `https://dashscope-intl.aliyuncs.com/api/v1` | `SG` |
//! | `us-east-1` | US (Virginia) | `https://dashscope-us.aliyuncs.com/api/v1` | `US` |
//! | `cn-hongkong` | China (Hong Kong) | `https://cn-hongkong.dashscope.aliyuncs.com/api/v1` | `HK` |
//! | `eu-central-1` | Germany (Frankfurt) | `https://{workspace}.eu-central-1.maas.aliyuncs.com/api/v1` | `EU` |
//! | `ap-northeast-1` | Japan (Tokyo) | `https://{workspace}.ap-northeast-1.maas.aliyuncs.com/api/v1` | `JP` |
//! | `cn-finance` | China finance cloud | `https://dashscope-finance.aliyuncs.com/api/v1` | `CN` |
//!
//! The compatible-mode base is the same host with `/compatible-mode/v1`. Frankfurt and Tokyo
//! are served only through workspace-scoped hosts, so they need a `workspace`; every other
//! region can use one too ([`Endpoint::for_region`] with a workspace and `gateway = true`).
//! `cn-finance` is this crate's id: Alibaba documents the host but no region id for it.
//!
//! ```
//! use merchant_ai_alibaba::region::{Endpoint, Region};
//!
//! let sg: Region = "ap-southeast-1".parse()?;
//! assert_eq!(sg.jurisdiction().as_str(), "SG");
//! let ep = Endpoint::for_region(sg, None, false)?;
//! assert_eq!(ep.native_base(), "https://dashscope-intl.aliyuncs.com/api/v1");
//! assert_eq!(ep.compatible_base(), "https://dashscope-intl.aliyuncs.com/compatible-mode/v1");
//!
//! // Tests (or a proxy): any host, keeping the region's jurisdiction.
//! let mock = Endpoint::for_region(sg, None, false)?.with_root("http://127.0.0.1:8080")?;
//! assert_eq!(mock.native_base(), "http://127.0.0.1:8080/api/v1");
//! assert_eq!(mock.jurisdiction().map(|j| j.as_str()), Some("SG"));
//! # Ok::<(), merchant_ai::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use merchant_ai::{Error, Jurisdiction, Result};

/// A DashScope (Model Studio) region.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// China (Beijing), `cn-beijing`.
    CnBeijing,
    /// Singapore, `ap-southeast-1` (the "International" deployment).
    ApSoutheast1,
    /// US (Virginia), `us-east-1`.
    UsEast1,
    /// China (Hong Kong), `cn-hongkong`.
    CnHongkong,
    /// Germany (Frankfurt), `eu-central-1`: workspace-scoped hosts only.
    EuCentral1,
    /// Japan (Tokyo), `ap-northeast-1`: workspace-scoped hosts only.
    ApNortheast1,
    /// China's finance cloud, `cn-finance` (this crate's id; Alibaba names none).
    CnFinance,
}

impl Region {
    /// Every region, in the order of the table above.
    pub const ALL: [Region; 7] = [
        Region::CnBeijing,
        Region::ApSoutheast1,
        Region::UsEast1,
        Region::CnHongkong,
        Region::EuCentral1,
        Region::ApNortheast1,
        Region::CnFinance,
    ];

    /// The config id (`ap-southeast-1`).
    pub fn id(self) -> &'static str {
        match self {
            Region::CnBeijing => "cn-beijing",
            Region::ApSoutheast1 => "ap-southeast-1",
            Region::UsEast1 => "us-east-1",
            Region::CnHongkong => "cn-hongkong",
            Region::EuCentral1 => "eu-central-1",
            Region::ApNortheast1 => "ap-northeast-1",
            Region::CnFinance => "cn-finance",
        }
    }

    /// A human name (`Singapore`).
    pub fn display_name(self) -> &'static str {
        match self {
            Region::CnBeijing => "China (Beijing)",
            Region::ApSoutheast1 => "Singapore",
            Region::UsEast1 => "US (Virginia)",
            Region::CnHongkong => "China (Hong Kong)",
            Region::EuCentral1 => "Germany (Frankfurt)",
            Region::ApNortheast1 => "Japan (Tokyo)",
            Region::CnFinance => "China finance cloud",
        }
    }

    /// The jurisdiction data sent to this region is processed in (`CN`, `SG`, `US`, `HK`,
    /// `EU`, `JP`), as the core's residency policy reads it.
    pub fn jurisdiction(self) -> Jurisdiction {
        Jurisdiction::new(match self {
            Region::CnBeijing | Region::CnFinance => "CN",
            Region::ApSoutheast1 => "SG",
            Region::UsEast1 => "US",
            Region::CnHongkong => "HK",
            Region::EuCentral1 => "EU",
            Region::ApNortheast1 => "JP",
        })
    }

    /// The region's own DashScope host, or `None` when it is served only through
    /// workspace-scoped hosts (Frankfurt, Tokyo).
    pub fn public_host(self) -> Option<&'static str> {
        match self {
            Region::CnBeijing => Some("dashscope.aliyuncs.com"),
            Region::ApSoutheast1 => Some("dashscope-intl.aliyuncs.com"),
            Region::UsEast1 => Some("dashscope-us.aliyuncs.com"),
            Region::CnHongkong => Some("cn-hongkong.dashscope.aliyuncs.com"),
            Region::CnFinance => Some("dashscope-finance.aliyuncs.com"),
            Region::EuCentral1 | Region::ApNortheast1 => None,
        }
    }

    /// Whether the region can only be reached through a workspace-scoped host.
    pub fn needs_workspace(self) -> bool {
        self.public_host().is_none()
    }

    /// Parses a config id (case and surrounding spaces ignored). The error lists every valid
    /// id; nothing else (a key, a host name, a city) is accepted.
    pub fn parse(id: &str) -> Result<Region> {
        let t = id.trim();
        Region::ALL
            .into_iter()
            .find(|r| r.id().eq_ignore_ascii_case(t))
            .ok_or_else(|| {
                Error::config(format!(
                    "unknown DashScope region {t:?}; valid ids: {}",
                    Region::valid_ids()
                ))
            })
    }

    /// `cn-beijing (China (Beijing)), ap-southeast-1 (Singapore), ...`, for messages.
    pub fn valid_ids() -> String {
        Region::ALL
            .iter()
            .map(|r| format!("{} ({})", r.id(), r.display_name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Region {
    type Err = Error;
    fn from_str(s: &str) -> Result<Region> {
        Region::parse(s)
    }
}

/// Where DashScope requests go: a root URL (scheme and host, optionally a port and a path
/// prefix), the region it belongs to and the jurisdiction its data is processed in.
///
/// The paths hang off the root: [`native_base`](Self::native_base) (`{root}/api/v1`),
/// [`compatible_base`](Self::compatible_base) (`{root}/compatible-mode/v1`) and
/// [`compatible_api_base`](Self::compatible_api_base) (`{root}/compatible-api/v1`, where
/// qwen3-rerank lives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    root: String,
    region: Option<Region>,
    jurisdiction: Option<Jurisdiction>,
    overridden: bool,
}

impl Endpoint {
    /// The endpoint of `region`. With `gateway = true` (or for Frankfurt and Tokyo, always)
    /// the workspace-scoped host `https://{workspace}.{region}.maas.aliyuncs.com` is used,
    /// which needs `workspace`.
    pub fn for_region(region: Region, workspace: Option<&str>, gateway: bool) -> Result<Self> {
        let root = match (region.public_host(), gateway) {
            (Some(host), false) => format!("https://{host}"),
            _ => {
                let Some(ws) = workspace else {
                    return Err(Error::config(format!(
                        "region {} ({}) is served through workspace-scoped hosts \
                         ({{workspace}}.{}.maas.aliyuncs.com): set `workspace`",
                        region.id(),
                        region.display_name(),
                        region.id()
                    )));
                };
                check_workspace(ws)?;
                format!("https://{}.{}.maas.aliyuncs.com", ws, region.id())
            }
        };
        Ok(Endpoint {
            root,
            region: Some(region),
            jurisdiction: Some(region.jurisdiction()),
            overridden: false,
        })
    }

    /// An endpoint at any root URL, not tied to a region. Its jurisdiction is the one given;
    /// without one, only a loopback host is accepted (a mock server or a local gateway), since
    /// the residency policy must know where remote data goes.
    pub fn custom(root: &str, jurisdiction: Option<Jurisdiction>) -> Result<Self> {
        let root = normalize_root(root)?;
        if jurisdiction.is_none() && !is_loopback(&root) {
            return Err(Error::config(format!(
                "base URL {root:?} is not tied to a region: set `region` or `jurisdiction` so \
                 the residency policy knows where the data goes"
            )));
        }
        Ok(Endpoint {
            root,
            region: None,
            jurisdiction,
            overridden: true,
        })
    }

    /// The same region and jurisdiction at another root URL (a proxy, a private gateway, a
    /// mock server). A trailing `/api/v1` or `/compatible-mode/v1` is accepted and removed.
    pub fn with_root(mut self, root: &str) -> Result<Self> {
        self.root = normalize_root(root)?;
        self.overridden = true;
        Ok(self)
    }

    /// Replaces the jurisdiction (for an override that processes data elsewhere).
    #[must_use]
    pub fn with_jurisdiction(mut self, jurisdiction: Jurisdiction) -> Self {
        self.jurisdiction = Some(jurisdiction);
        self
    }

    /// The root URL, without a trailing slash (`https://dashscope-intl.aliyuncs.com`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The native API base (`{root}/api/v1`).
    pub fn native_base(&self) -> String {
        format!("{}/api/v1", self.root)
    }

    /// The OpenAI-compatible base (`{root}/compatible-mode/v1`).
    pub fn compatible_base(&self) -> String {
        format!("{}/compatible-mode/v1", self.root)
    }

    /// The compatible API base of newer services such as qwen3-rerank
    /// (`{root}/compatible-api/v1`).
    pub fn compatible_api_base(&self) -> String {
        format!("{}/compatible-api/v1", self.root)
    }

    /// The region, when the endpoint belongs to one.
    pub fn region(&self) -> Option<Region> {
        self.region
    }

    /// The jurisdiction data sent here is processed in.
    pub fn jurisdiction(&self) -> Option<&Jurisdiction> {
        self.jurisdiction.as_ref()
    }

    /// Whether the root was given explicitly rather than derived from the region.
    pub fn is_overridden(&self) -> bool {
        self.overridden
    }

    /// Whether the root is a loopback host (data stays on this machine).
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.root)
    }
}

/// Resolves the endpoint of a provider section: `region` (a [`Region`] id), `workspace`,
/// `gateway`, `base_url` (override) and `jurisdiction` (override). `key_path` names the
/// section's keys in errors (`providers.qwen.region`).
///
/// - `region` alone: the region's host.
/// - `region` and `base_url`: that host, the region's jurisdiction (unless `jurisdiction`).
/// - `base_url` alone: `jurisdiction` is required unless the host is loopback.
/// - neither: an error listing the valid region ids.
pub fn resolve(
    region: Option<&str>,
    workspace: Option<&str>,
    gateway: bool,
    base_url: Option<&str>,
    jurisdiction: Option<&str>,
    key_path: &dyn Fn(&str) -> String,
) -> Result<Endpoint> {
    let j = match jurisdiction.map(str::trim) {
        Some("") => {
            return Err(Error::config(format!(
                "{}: must not be empty",
                key_path("jurisdiction")
            )));
        }
        Some(j) => Some(Jurisdiction::new(j)),
        None => None,
    };
    let region = match region {
        Some(r) => Some(Region::parse(r).map_err(|e| e.context(key_path("region")))?),
        None => None,
    };
    let ep = match (region, base_url) {
        (Some(r), None) => Endpoint::for_region(r, workspace, gateway)
            .map_err(|e| e.context(key_path("region")))?,
        (Some(r), Some(url)) => Endpoint {
            root: normalize_root(url).map_err(|e| e.context(key_path("base_url")))?,
            region: Some(r),
            jurisdiction: Some(r.jurisdiction()),
            overridden: true,
        },
        (None, Some(url)) => {
            Endpoint::custom(url, j.clone()).map_err(|e| e.context(key_path("base_url")))?
        }
        (None, None) => {
            return Err(Error::config(format!(
                "{}: required (the region decides where data is processed; it is never guessed \
                 from the key); valid ids: {}",
                key_path("region"),
                Region::valid_ids()
            )));
        }
    };
    Ok(match j {
        Some(j) => ep.with_jurisdiction(j),
        None => ep,
    })
}

/// The jurisdiction of any Alibaba Cloud region id (`cn-hangzhou` -> `CN`, `eu-central-1` ->
/// `EU`, `ap-southeast-1` -> `SG`), for services with per-region hosts such as OpenSearch,
/// AIRec and PAI-EAS. `None` for an id not in Alibaba's published region list.
pub fn jurisdiction_of(region_id: &str) -> Option<Jurisdiction> {
    let id = region_id.trim().to_ascii_lowercase();
    if let Ok(r) = Region::parse(&id) {
        return Some(r.jurisdiction());
    }
    // Alibaba Cloud's public region ids (mainland China regions and the international ones).
    const TABLE: &[(&str, &str)] = &[
        ("cn-qingdao", "CN"),
        ("cn-zhangjiakou", "CN"),
        ("cn-huhehaote", "CN"),
        ("cn-wulanchabu", "CN"),
        ("cn-hangzhou", "CN"),
        ("cn-shanghai", "CN"),
        ("cn-nanjing", "CN"),
        ("cn-fuzhou", "CN"),
        ("cn-shenzhen", "CN"),
        ("cn-heyuan", "CN"),
        ("cn-guangzhou", "CN"),
        ("cn-chengdu", "CN"),
        ("cn-wuhan-lr", "CN"),
        ("cn-hangzhou-finance", "CN"),
        ("cn-shanghai-finance-1", "CN"),
        ("cn-shenzhen-finance-1", "CN"),
        ("cn-beijing-finance-1", "CN"),
        ("ap-southeast-3", "MY"),
        ("ap-southeast-5", "ID"),
        ("ap-southeast-6", "PH"),
        ("ap-southeast-7", "TH"),
        ("ap-northeast-2", "KR"),
        ("us-west-1", "US"),
        ("eu-west-1", "GB"),
        ("me-east-1", "AE"),
        ("me-central-1", "SA"),
    ];
    TABLE
        .iter()
        .find(|(r, _)| *r == id)
        .map(|(_, j)| Jurisdiction::new(j))
}

/// A workspace id must be one DNS label: it becomes part of a host name.
fn check_workspace(ws: &str) -> Result<()> {
    let ok = !ws.is_empty()
        && ws.len() <= 63
        && ws
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ws.starts_with('-')
        && !ws.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "workspace must be a workspace id such as llm-abc123 (lower-case letters, digits \
             and '-')",
        ))
    }
}

fn normalize_root(url: &str) -> Result<String> {
    let mut u = url.trim().trim_end_matches('/');
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        return Err(Error::config(format!(
            "{u:?} must start with http:// or https://"
        )));
    }
    for suffix in ["/api/v1", "/compatible-mode/v1", "/compatible-api/v1"] {
        if let Some(s) = u.strip_suffix(suffix) {
            u = s;
            break;
        }
    }
    let u = u.trim_end_matches('/');
    let host = u.split_once("://").map_or("", |(_, r)| r);
    if host.is_empty() || host.contains(['?', '#', ' ']) {
        return Err(Error::config(format!(
            "{u:?} is not a base URL (scheme, host and an optional port and path)"
        )));
    }
    Ok(u.to_owned())
}

/// Whether the URL's host is a loopback address.
pub(crate) fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(k: &str) -> String {
        format!("providers.qwen.{k}")
    }

    #[test]
    fn every_region_maps_to_its_hosts_and_jurisdiction() {
        let cases = [
            ("cn-beijing", "https://dashscope.aliyuncs.com", "CN"),
            (
                "ap-southeast-1",
                "https://dashscope-intl.aliyuncs.com",
                "SG",
            ),
            ("us-east-1", "https://dashscope-us.aliyuncs.com", "US"),
            (
                "cn-hongkong",
                "https://cn-hongkong.dashscope.aliyuncs.com",
                "HK",
            ),
            ("cn-finance", "https://dashscope-finance.aliyuncs.com", "CN"),
        ];
        for (id, root, j) in cases {
            let r = Region::parse(id).unwrap();
            assert_eq!(r.id(), id);
            assert_eq!(r.to_string(), id);
            let ep = Endpoint::for_region(r, None, false).unwrap();
            assert_eq!(ep.root(), root);
            assert_eq!(ep.native_base(), format!("{root}/api/v1"));
            assert_eq!(ep.compatible_base(), format!("{root}/compatible-mode/v1"));
            assert_eq!(ep.jurisdiction().unwrap().as_str(), j);
            assert_eq!(ep.region(), Some(r));
            assert!(!ep.is_overridden());
        }
        assert_eq!(Region::ALL.len(), 7);
        for r in Region::ALL {
            assert_eq!(Region::parse(r.id()).unwrap(), r);
            assert_eq!(jurisdiction_of(r.id()), Some(r.jurisdiction()));
        }
    }

    #[test]
    fn frankfurt_and_tokyo_need_a_workspace() {
        let e = Endpoint::for_region(Region::EuCentral1, None, false).unwrap_err();
        assert!(e.message().contains("workspace"), "{e}");
        let ep = Endpoint::for_region(Region::EuCentral1, Some("llm-abc123"), false).unwrap();
        assert_eq!(
            ep.root(),
            "https://llm-abc123.eu-central-1.maas.aliyuncs.com"
        );
        assert_eq!(ep.jurisdiction().unwrap().as_str(), "EU");
        let ep = Endpoint::for_region(Region::ApNortheast1, Some("ws1"), false).unwrap();
        assert_eq!(
            ep.compatible_base(),
            "https://ws1.ap-northeast-1.maas.aliyuncs.com/compatible-mode/v1"
        );
        assert_eq!(ep.jurisdiction().unwrap().as_str(), "JP");
        // Any region through its workspace gateway.
        let ep = Endpoint::for_region(Region::ApSoutheast1, Some("llm-x"), true).unwrap();
        assert_eq!(ep.root(), "https://llm-x.ap-southeast-1.maas.aliyuncs.com");
        // A workspace that is not a DNS label cannot smuggle a host.
        for bad in ["", "evil.com/x", "a b", "-x", "UPPER", "x@y"] {
            assert!(
                Endpoint::for_region(Region::EuCentral1, Some(bad), false).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_ids_list_the_valid_ones() {
        for bad in [
            "singapore",
            "sk-abc",
            "dashscope-intl.aliyuncs.com",
            "",
            "cn-beijing-2",
        ] {
            let e = Region::parse(bad).unwrap_err();
            assert_eq!(e.kind(), merchant_ai::ErrorKind::ConfigInvalid);
            for r in Region::ALL {
                assert!(e.message().contains(r.id()), "{e}");
            }
        }
        assert_eq!(
            Region::parse(" AP-Southeast-1 ").unwrap(),
            Region::ApSoutheast1
        );
        assert_eq!("us-east-1".parse::<Region>().unwrap(), Region::UsEast1);
    }

    #[test]
    fn resolve_requires_an_explicit_region() {
        let e = resolve(None, None, false, None, None, &kp).unwrap_err();
        assert!(e.message().contains("providers.qwen.region"), "{e}");
        assert!(e.message().contains("ap-southeast-1"), "{e}");
        let e = resolve(Some("mars-1"), None, false, None, None, &kp).unwrap_err();
        assert!(e.message().starts_with("providers.qwen.region: "), "{e}");
        let ep = resolve(Some("ap-southeast-1"), None, false, None, None, &kp).unwrap();
        assert_eq!(
            ep.native_base(),
            "https://dashscope-intl.aliyuncs.com/api/v1"
        );
    }

    #[test]
    fn overrides_keep_or_set_the_jurisdiction() {
        // Region plus override (tests, proxies): region's jurisdiction.
        let ep = resolve(
            Some("ap-southeast-1"),
            None,
            false,
            Some("http://127.0.0.1:9999/api/v1/"),
            None,
            &kp,
        )
        .unwrap();
        assert_eq!(ep.root(), "http://127.0.0.1:9999");
        assert_eq!(ep.native_base(), "http://127.0.0.1:9999/api/v1");
        assert_eq!(ep.jurisdiction().unwrap().as_str(), "SG");
        assert_eq!(ep.region(), Some(Region::ApSoutheast1));
        assert!(ep.is_overridden() && ep.is_loopback());
        // Override alone: loopback is fine without a jurisdiction...
        let ep = resolve(None, None, false, Some("http://localhost:1"), None, &kp).unwrap();
        assert_eq!(ep.jurisdiction(), None);
        // ...a remote host is not.
        let e = resolve(None, None, false, Some("https://gw.example.com"), None, &kp).unwrap_err();
        assert!(e.message().contains("providers.qwen.base_url"), "{e}");
        let ep = resolve(
            None,
            None,
            false,
            Some("https://gw.example.com/dashscope"),
            Some("de"),
            &kp,
        )
        .unwrap();
        assert_eq!(ep.native_base(), "https://gw.example.com/dashscope/api/v1");
        assert_eq!(ep.jurisdiction().unwrap().as_str(), "DE");
        // Explicit jurisdiction wins over the region's.
        let ep = resolve(
            Some("us-east-1"),
            None,
            false,
            Some("https://proxy.example.eu"),
            Some("EU"),
            &kp,
        )
        .unwrap();
        assert_eq!(ep.jurisdiction().unwrap().as_str(), "EU");
        for bad in [
            "ftp://x",
            "dashscope.aliyuncs.com",
            "https://",
            "https://a b",
        ] {
            assert!(
                resolve(Some("cn-beijing"), None, false, Some(bad), None, &kp).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn jurisdictions_of_other_alibaba_regions() {
        assert_eq!(jurisdiction_of("cn-hangzhou").unwrap().as_str(), "CN");
        assert_eq!(jurisdiction_of("eu-west-1").unwrap().as_str(), "GB");
        assert_eq!(jurisdiction_of("EU-CENTRAL-1").unwrap().as_str(), "EU");
        assert_eq!(jurisdiction_of("nowhere-1"), None);
    }
}
