//! Wire-level checks of the OpenSearch, AIRec, PAI-Rec and PAI-EAS adapters against loopback
//! fakes: the headers each service requires, the bodies sent, the documented answer shapes
//! (OpenSearch OK and FAIL, AIRec, PAI-Rec codes 200/299/400/500, EAS), and feedback events
//! carrying the trace ids of the recommendation they follow.

mod svc;

use merchant_ai::{
    ErrorKind, Event, EventKind, ForecastRequest, Product, ProductId, RecommendRequest, Scene,
    SearchRequest, Series,
};
use serde_json::{Value, json};
use svc::{Harness, Svc};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

fn hdr(r: &wiremock::Request, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_signs_pushes_and_searches() {
    let h = Harness::start(Svc::OpenSearch).await;
    let p = h.provider("os").await;
    let s = p.searcher().unwrap();
    let rep = s
        .upsert(vec![
            merchant_ai::contract::fixtures::product("ct-005"),
            Product::new(
                "",
                "no id",
                merchant_ai::Money::new(1, merchant_ai::Currency::CNY),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(rep.applied, 1);
    assert_eq!(
        rep.rejected.len(),
        1,
        "the invalid product is reported, not pushed"
    );
    let r = s
        .search(SearchRequest::new("teapot it's").with_limit(5))
        .await
        .unwrap();
    assert_eq!(r.hits[0].product_id.as_str(), "ct-005");
    assert_eq!(r.meta.request_id.as_deref(), Some("os-search-1"));
    s.remove(vec![ProductId::new("ct-005")]).await.unwrap();

    let reqs = h.server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert!(
            hdr(r, "authorization").starts_with(&format!("OPENSEARCH {}:", svc::AK_ID)),
            "{}",
            r.url.path()
        );
        assert_eq!(hdr(r, "content-type"), "application/json");
        assert!(
            hdr(r, "x-opensearch-nonce")
                .bytes()
                .all(|b| b.is_ascii_digit())
        );
        assert_eq!(hdr(r, "x-opensearch-nonce").len(), 18);
        assert!(chrono::DateTime::parse_from_rfc3339(&hdr(r, "date")).is_ok());
    }
    let push = &reqs[0];
    assert_eq!(push.url.path(), "/v3/openapi/apps/shop/main/actions/bulk");
    assert_eq!(
        hdr(push, "content-md5"),
        merchant_ai_alibaba::sign::md5_hex(&push.body)
    );
    let cmds: Value = serde_json::from_slice(&push.body).unwrap();
    assert_eq!(cmds[0]["cmd"], "ADD");
    assert_eq!(cmds[0]["fields"]["id"], "ct-005");
    assert_eq!(cmds[0]["fields"]["doc_type"], "product");
    let search = &reqs[1];
    assert_eq!(search.url.path(), "/v3/openapi/apps/shop/search");
    let raw = search.url.query().unwrap();
    // RFC 3986 encoding, the same bytes that were signed: %20 for a space, %27 for a quote.
    assert!(
        raw.starts_with("fetch_fields=id&query=config%3Astart")
            || raw.starts_with("fetch_fields=id&query=config%3D"),
        "{raw}"
    );
    assert!(raw.contains("teapot%20it%5C%27s"), "{raw}");
    assert!(!raw.contains('+'));
    assert!(search.body.is_empty());
    let del: Value = serde_json::from_slice(&reqs[2].body).unwrap();
    assert_eq!(del, json!([{"cmd": "DELETE", "fields": {"id": "ct-005"}}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_fail_bodies_map_to_kinds() {
    let h = Harness::start(Svc::OpenSearch).await;
    let p = h.provider("os").await;
    let s = p.searcher().unwrap();
    let fail = |code: i64, msg: &str| {
        json!({"status":"FAIL","request_id":"r-fail","result":{"searchtime":0.0,"total":0,"num":0,
               "viewtotal":0,"items":[],"facet":[]},"errors":[{"code":code,"message":msg}],"tracer":""})
    };
    for (status, code, kind, retryable) in [
        (200, 5001, ErrorKind::Unauthenticated, false),
        (200, 2001, ErrorKind::NotFound, false),
        (200, 6301, ErrorKind::InvalidRequest, false),
        (403, 4003, ErrorKind::Unauthenticated, false),
        (404, 2001, ErrorKind::NotFound, false),
        (503, 1000, ErrorKind::Unavailable, true),
    ] {
        h.server.reset().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(fail(code, "User doesnot exist")),
            )
            .mount(&h.server)
            .await;
        let e = s.search(SearchRequest::new("x")).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{code}: {e}");
        assert_eq!(e.is_retryable(), retryable, "{code}: {e}");
        assert_eq!(e.vendor_code(), Some(code.to_string().as_str()));
        assert_eq!(e.provider(), Some("os"));
        assert_eq!(e.operation(), Some("search"));
    }
    // A push refused inside a 200.
    h.server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status":"FAIL","request_id":"r","errors":[{"code":4007,"message":"json format error"}]}),
        ))
        .mount(&h.server)
        .await;
    let e = s
        .upsert(vec![merchant_ai::contract::fixtures::product("ct-001")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert_eq!(e.operation(), Some("upsert"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airec_signs_with_acs3_and_feedback_carries_trace_fields() {
    let h = Harness::start(Svc::Airec).await;
    let p = h.provider("airec").await;
    let rec = p.recommender().unwrap();
    let r = rec
        .recommend(
            RecommendRequest::new(Scene::ProductPage)
                .with_subject("u 1*")
                .with_anchor("ct-002")
                .with_exclude("ct-004")
                .with_limit(3),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = r.items.iter().map(|i| i.product_id.as_str()).collect();
    assert_eq!(ids, ["ct-003", "ct-001", "ct-006"]);
    assert!(r.items.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(r.trace_id.as_deref(), Some("1007.trace-0"));
    assert_eq!(
        r.meta.request_id.as_deref(),
        Some("04707E49-642A-4649-827A-F8EEB07D4C27")
    );
    assert_eq!(r.items[0].reason.detail, "AIRec i2i_common_common");

    let t = merchant_ai::contract::fixtures::base_time();
    rec.record(vec![
        Event::new("u 1*", "ct-001", EventKind::Click, t)
            .with_trace_id(r.trace_id.clone().unwrap()),
        Event::new("u2", "ct-009", EventKind::Purchase, t).with_quantity(2),
        Event::new("u2", "ct-009", EventKind::Return, t),
    ])
    .await
    .unwrap();

    let reqs = h.server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    let (get, push) = (&reqs[0], &reqs[1]);
    for (r, action) in [(get, "Recommend"), (push, "PushDocument")] {
        let auth = hdr(r, "authorization");
        assert!(
            auth.starts_with(&format!(
                "ACS3-HMAC-SHA256 Credential={},SignedHeaders=",
                svc::AK_ID
            )),
            "{auth}"
        );
        assert!(auth.contains("x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="));
        assert_eq!(hdr(r, "x-acs-action"), action);
        assert_eq!(hdr(r, "x-acs-version"), "2020-11-26");
        assert_eq!(
            hdr(r, "x-acs-content-sha256"),
            merchant_ai_alibaba::sign::sha256_hex(&r.body)
        );
        assert_eq!(hdr(r, "x-acs-signature-nonce").len(), 32);
    }
    assert_ne!(
        hdr(get, "x-acs-signature-nonce"),
        hdr(push, "x-acs-signature-nonce"),
        "nonces never repeat"
    );
    assert_eq!(
        get.url.query().unwrap(),
        "items=ct-002&returnCount=5&sceneId=product_page&userId=u%201%2A"
    );
    assert_eq!(hdr(push, "content-type"), "application/json; charset=utf-8");
    assert!(hdr(get, "content-type").is_empty());
    let body: Value = serde_json::from_slice(&push.body).unwrap();
    let docs = body.as_array().unwrap();
    assert_eq!(
        docs.len(),
        2,
        "returns have no AIRec behaviour and are not sent"
    );
    let f = &docs[0]["fields"];
    assert_eq!(docs[0]["cmd"], "add");
    assert_eq!(f["trace_id"], "ali");
    assert_eq!(f["trace_info"], "1007.trace-1");
    assert_eq!(f["scene_id"], "product_page");
    assert_eq!(f["bhv_type"], "click");
    assert_eq!(f["bhv_time"], t.timestamp().to_string());
    let g = &docs[1]["fields"];
    assert_eq!(g["trace_id"], "selfhold");
    assert_eq!(g["bhv_type"], "buy");
    assert_eq!(g["bhv_value"], "2");
    assert_eq!(g["scene_id"], "home");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airec_pop_errors_and_unsupported_filters() {
    let h = Harness::start(Svc::Airec).await;
    let p = h.provider("airec").await;
    let rec = p.recommender().unwrap();
    let e = rec
        .recommend(
            RecommendRequest::new(Scene::Home)
                .with_filters(merchant_ai::Filters::new().with_in_stock(true)),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().starts_with("filters"));
    for (status, body, kind) in [
        (
            400,
            json!({"RequestId":"r1","Code":"SignatureDoesNotMatch","Message":"sig"}),
            ErrorKind::Unauthenticated,
        ),
        (
            400,
            json!({"requestId":"r2","code":"InvalidParameter","message":"bad sceneId"}),
            ErrorKind::InvalidRequest,
        ),
        (
            404,
            json!({"requestId":"r3","code":"InstanceNotExist","message":"no"}),
            ErrorKind::NotFound,
        ),
        (
            403,
            json!({"requestId":"r4","code":"Forbidden.RAM","message":"no"}),
            ErrorKind::PermissionDenied,
        ),
    ] {
        h.server.reset().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&h.server)
            .await;
        let e = rec
            .recommend(RecommendRequest::new(Scene::Home).with_subject("u1"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.request_id().is_some());
    }
}

async fn pairec_answer(
    h: &Harness,
    body: Value,
) -> merchant_ai::Result<merchant_ai::RecommendResponse> {
    h.server.reset().await;
    Mock::given(method("POST"))
        .and(path("/api/predict/shop_rec/api/rec/feed"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&h.server)
        .await;
    let p = h.provider("pairec").await;
    p.recommender()
        .unwrap()
        .recommend(RecommendRequest::new(Scene::Home).with_subject("1000079"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairec_codes_200_299_400_500() {
    let h = Harness::start(Svc::PaiRec).await;
    let ok = pairec_answer(
        &h,
        json!({"code":200,"msg":"success","request_id":"c46c3f5e-6b32-4b5c-8aac-59a319941248","size":2,
               "experiment_id":"ER2_L1#EG1#E2","items":[{"item_id":"248791390","score":0.91,"retrieve_id":"u2i"},
               {"item_id":"1111","score":0.77,"retrieve_id":"item_list"}]}),
    )
    .await
    .unwrap();
    assert_eq!(ok.items.len(), 2);
    assert_eq!(
        ok.trace_id.as_deref(),
        Some("c46c3f5e-6b32-4b5c-8aac-59a319941248")
    );
    assert_eq!(ok.meta.model.as_deref(), Some("ER2_L1#EG1#E2"));
    let short = pairec_answer(
        &h,
        json!({"code":299,"msg":"items size not enough","request_id":"r299","items":[{"item_id":"1","score":0.5}]}),
    )
    .await
    .unwrap();
    assert_eq!(short.items.len(), 1, "299 is a short list, not an error");
    let e = pairec_answer(
        &h,
        json!({"code":400,"msg":"uid not empty","request_id":"r400"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(!e.is_retryable());
    assert_eq!(e.request_id(), Some("r400"));
    let e = pairec_answer(
        &h,
        json!({"code":500,"msg":"engine error","request_id":"r500"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairec_request_shape_token_and_behaviour_log() {
    let h = Harness::start(Svc::PaiRec).await;
    let p = h.provider("pairec").await;
    let rec = p.recommender().unwrap();
    let mut opts = merchant_ai::ProviderOptions::new();
    opts.insert("features".into(), json!({"age": 20}));
    let r = rec
        .recommend(
            RecommendRequest::new(Scene::ProductPage)
                .with_anchor("ct-001")
                .with_limit(4)
                .with_provider_options(opts),
        )
        .await
        .unwrap();
    assert!(r.items.iter().all(|i| i.product_id.as_str() != "ct-001"));
    assert_eq!(r.items.len(), 4);
    let t = merchant_ai::contract::fixtures::base_time();
    rec.record(vec![
        Event::new("s1", r.items[0].product_id.clone(), EventKind::AddToCart, t)
            .with_trace_id(r.trace_id.clone().unwrap()),
    ])
    .await
    .unwrap();
    let reqs = h.server.received_requests().await.unwrap();
    let feed = &reqs[0];
    assert_eq!(
        hdr(feed, "authorization"),
        svc::TOKEN,
        "the EAS token is sent raw"
    );
    assert_eq!(hdr(feed, "content-type"), "application/json");
    let body: Value = serde_json::from_slice(&feed.body).unwrap();
    assert_eq!(
        body,
        json!({"uid":"anonymous","size":5,"scene_id":"product_page","debug":false,
               "features":{"age":20},"item_id":"ct-001"})
    );
    let log = &reqs[1];
    assert_eq!(log.url.path(), "/logstores/behavior/track");
    assert!(
        log.headers.get("authorization").is_none(),
        "the token goes to the engine only"
    );
    let v: Value = serde_json::from_slice(&log.body).unwrap();
    let entry = &v["__logs__"][0];
    assert_eq!(entry["event"], "add_to_cart");
    assert_eq!(entry["request_id"], "c46c3f5e-6b32-4b5c-8aac-59a319941248");
    assert_eq!(entry["exp_id"], "ER2_L1#EG1#E2");
    assert_eq!(entry["scene_id"], "product_page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairec_without_a_behaviour_log_says_which_key() {
    let h = Harness::start(Svc::PaiRec).await;
    let pc = h.section("pr");
    let mut c: merchant_ai_alibaba::pairec::PaiRecConfig = pc.options_as().unwrap();
    c.behavior_log_url = None;
    let p = merchant_ai_alibaba::pairec::PaiRecProvider::new(&pc, c, None).unwrap();
    let e = merchant_ai::Provider::recommender(&p)
        .unwrap()
        .record(vec![Event::new(
            "s",
            "p",
            EventKind::View,
            merchant_ai::contract::fixtures::base_time(),
        )])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("providers.pr.behavior_log_url"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eas_contract_token_and_plain_text_errors() {
    let h = Harness::start(Svc::Eas).await;
    let p = h.provider("demand").await;
    let f = p.forecaster().unwrap();
    let mut series = merchant_ai::contract::fixtures::series();
    series.push(Series::new("bad", vec![1.0, f64::NAN]));
    let r = f
        .forecast(ForecastRequest::new(series, 3).with_quantiles(vec![0.1, 0.9]))
        .await
        .unwrap();
    assert_eq!(r.series.len(), 3);
    assert_eq!(r.series[0].point.len(), 3);
    assert_eq!(r.series[0].model, "naive-last");
    assert_eq!(r.meta.model.as_deref(), Some("naive-last"));
    assert_eq!(
        r.get("bad").unwrap().error.as_ref().unwrap().kind,
        ErrorKind::InvalidRequest
    );
    let reqs = h.server.received_requests().await.unwrap();
    assert_eq!(hdr(&reqs[0], "authorization"), svc::TOKEN);
    assert_eq!(hdr(&reqs[0], "content-type"), "application/json");
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["horizon"], 3);
    assert_eq!(body["quantiles"], json!([0.1, 0.9]));
    let ids: Vec<&str> = body["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"bad"), "an invalid series is not sent");
    assert!(body["series"][0]["values"].is_array());

    for (status, text, kind) in [
        (401, "Authorization failed", ErrorKind::Unauthenticated),
        (404, "service demand2 not found", ErrorKind::NotFound),
        (502, "<html>bad gateway</html>", ErrorKind::Unavailable),
    ] {
        h.server.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_string(text))
            .mount(&h.server)
            .await;
        let e = f
            .forecast(ForecastRequest::new(
                merchant_ai::contract::fixtures::series(),
                3,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.message().contains(text), "{e}");
        assert_eq!(e.status(), Some(status));
    }
    // A 200 that is not the contract.
    h.server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"predictions": []})))
        .mount(&h.server)
        .await;
    let e = f
        .forecast(ForecastRequest::new(
            merchant_ai::contract::fixtures::series(),
            3,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_declare_region_and_jurisdiction() {
    for (svc, kind, region, j) in [
        (Svc::OpenSearch, "opensearch", "cn-hangzhou", "CN"),
        (Svc::Airec, "airec", "cn-hangzhou", "CN"),
        (Svc::PaiRec, "pairec", "ap-southeast-1", "SG"),
        (Svc::Eas, "pai-eas", "cn-shanghai", "CN"),
    ] {
        let h = Harness::start(svc).await;
        let p = h.provider("x").await;
        let i = p.info();
        assert_eq!(i.kind, kind);
        assert_eq!(i.region.as_deref(), Some(region));
        assert_eq!(i.jurisdiction.as_ref().unwrap().as_str(), j);
        assert!(i.data_leaves_process);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airec_legacy_roa_signature() {
    let h = Harness::start(Svc::Airec).await;
    h.server.reset().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"requestId":"r","code":"200",
            "result":[{"itemId":"i1","traceId":"ali","traceInfo":"t1","weight":0.5}]})),
        )
        .mount(&h.server)
        .await;
    let pc = h.section("airec").with_option("signature", "roa");
    let c: merchant_ai_alibaba::airec::AirecConfig = pc.options_as().unwrap();
    let p = merchant_ai_alibaba::airec::AirecProvider::new(
        &pc,
        c,
        merchant_ai_alibaba::sign::Signer::new(svc::creds()),
    )
    .unwrap();
    let r = merchant_ai::Provider::recommender(&p)
        .unwrap()
        .recommend(RecommendRequest::new(Scene::Home).with_subject("u1"))
        .await
        .unwrap();
    assert_eq!(r.items[0].product_id.as_str(), "i1");
    let reqs = h.server.received_requests().await.unwrap();
    let req = &reqs[0];
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let q: Vec<(String, String)> = req
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let want = merchant_ai_alibaba::sign::roa_authorization(
        &svc::creds(),
        &merchant_ai_alibaba::sign::SignInput {
            method: "GET",
            path: req.url.path(),
            query: &q,
            headers: &headers,
        },
    );
    assert_eq!(hdr(req, "authorization"), want);
    assert!(want.starts_with(&format!("acs {}:", svc::AK_ID)));
    assert_eq!(hdr(req, "x-acs-signature-method"), "HMAC-SHA1");
    assert_eq!(hdr(req, "x-acs-signature-version"), "1.0");
    assert!(hdr(req, "date").ends_with(" GMT"));
    // A bad scheme name is a config error naming the key.
    let bad = h.section("airec").with_option("signature", "v2");
    let c: merchant_ai_alibaba::airec::AirecConfig = bad.options_as().unwrap();
    let e = c.validate(&bad).unwrap_err();
    assert!(e.message().contains("providers.airec.signature"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_name_the_key() {
    use merchant_ai::{AdapterFactory, BuildContext, Config, EnvSource, ProviderConfig};
    let os = merchant_ai_alibaba::opensearch_factory();
    let no_app = ProviderConfig::new("os", "opensearch").with_region("cn-hangzhou");
    let e = os.capabilities(&no_app).unwrap_err();
    assert!(e.message().contains("providers.os.app"), "{e}");
    let no_region = ProviderConfig::new("os", "opensearch")
        .with_option("app", "shop")
        .with_option("endpoint", "https://example.invalid");
    let e = os.capabilities(&no_region).unwrap_err();
    assert!(e.message().contains("providers.os.region"), "{e}");
    let typo = ProviderConfig::new("os", "opensearch")
        .with_region("cn-hangzhou")
        .with_option("app", "shop")
        .with_option("aplication", "x");
    assert!(os.capabilities(&typo).is_err(), "unknown keys are rejected");
    assert!(
        merchant_ai_alibaba::airec_factory()
            .capabilities(&ProviderConfig::new("a", "airec").with_region("cn-hangzhou"))
            .unwrap_err()
            .message()
            .contains("providers.a.instance_id")
    );
    assert!(
        merchant_ai_alibaba::pairec_factory()
            .capabilities(&ProviderConfig::new("p", "pairec").with_region("cn-hangzhou"))
            .unwrap_err()
            .message()
            .contains("providers.p.endpoint")
    );
    assert!(
        merchant_ai_alibaba::eas_factory()
            .capabilities(&ProviderConfig::new("f", "pai-eas").with_region("cn-hangzhou"))
            .unwrap_err()
            .message()
            .contains("providers.f.endpoint")
    );
    // A named but unset variable: the error names the key and the variable, never a value.
    let env = EnvSource::from_map([("ONLY_ID", "id")]);
    let pc = ProviderConfig::new("os", "opensearch")
        .with_region("cn-hangzhou")
        .with_env(env.clone())
        .with_option("app", "shop")
        .with_option("access_key_id_env", "ONLY_ID")
        .with_option("access_key_secret_env", "MISSING_SECRET");
    let config = Config::parse_with_env(
        "[providers.os]\nkind = \"opensearch\"\n[profiles.default.routes]\nsearch = [\"os\"]\n",
        env,
    )
    .unwrap();
    let e = os.build(BuildContext::new(&pc, &config)).await.unwrap_err();
    assert!(
        e.message().contains("providers.os.access_key_secret_env")
            && e.message().contains("MISSING_SECRET"),
        "{e}"
    );
}
