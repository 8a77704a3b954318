//! The SSRF guard, table-driven: every spelling of an internal address, via
//! the URL, via DNS and via redirects, against a live server on 127.0.0.1
//! that must never be reached.

use std::collections::HashMap;

use agentd_tools::{ToolError, ToolOutput};
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::json;

use crate::common::*;

/// The hop server on 127.0.0.2 (allowed): `/r?to=URL` redirects, `/ok` answers.
fn hop_router() -> axum::Router {
    axum::Router::new()
        .route(
            "/r",
            axum::routing::any(|Query(q): Query<HashMap<String, String>>| async move {
                let mut headers = HeaderMap::new();
                headers.insert(header::LOCATION, q["to"].parse().unwrap());
                (StatusCode::FOUND, headers)
            }),
        )
        .route("/ok", axum::routing::get(|| async { "hop" }))
}

fn encode(url: &str) -> String {
    url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

#[tokio::test]
async fn refuses_internal_addresses_in_every_spelling() {
    let (first, second) = twin_listeners().await;
    let target = spawn_target(first).await;
    let p = target.addr.port();
    serve(second, hop_router()).await;

    let dns = FakeDns::new(&[
        ("evil.test", &["127.0.0.1"]),
        ("mixed.test", &["93.184.216.34", "127.0.0.1"]),
        ("metadata.google.internal", &["169.254.169.254"]),
        ("v6.test", &["::1"]),
        ("mapped.test", &["::ffff:127.0.0.1"]),
        ("private.test", &["10.1.2.3"]),
        ("hop.test", &["127.0.0.2"]),
    ]);
    let reg = registry_with(
        "[tools.http_get]\nallow = [\"127.0.0.2\"]\ntimeout = \"5s\"\n\
         [tools.http_request]\nallow = [\"127.0.0.2\"]\ntimeout = \"5s\"\n",
        dns.clone(),
        &[],
    )
    .await;
    let get = reg.get("http_get").unwrap();
    let request = reg.get("http_request").unwrap();

    let hop = |to: &str| format!("http://127.0.0.2:{p}/r?to={}", encode(to));
    let cases: Vec<(&str, String)> = vec![
        ("dotted loopback", format!("http://127.0.0.1:{p}/")),
        ("other loopback", format!("http://127.9.8.7:{p}/")),
        ("decimal", format!("http://2130706433:{p}/")),
        ("hex", format!("http://0x7f000001:{p}/")),
        ("hex dotted", format!("http://0x7f.0x0.0x0.0x1:{p}/")),
        ("octal", format!("http://0177.0.0.1:{p}/")),
        ("octal padded", format!("http://0177.0000.0000.0001:{p}/")),
        ("short", format!("http://127.1:{p}/")),
        ("short hex", format!("http://0x7f.1:{p}/")),
        ("trailing dot", format!("http://127.0.0.1.:{p}/")),
        ("percent-encoded", format!("http://%31%32%37.0.0.1:{p}/")),
        ("full-width digits", format!("http://１２７.０.０.１:{p}/")),
        ("userinfo trick", format!("http://hop.test@127.0.0.1:{p}/")),
        ("zero", format!("http://0.0.0.0:{p}/")),
        ("bare zero", format!("http://0:{p}/")),
        ("IPv6 loopback", format!("http://[::1]:{p}/")),
        ("IPv6 unspecified", format!("http://[::]:{p}/")),
        ("IPv4-mapped", format!("http://[::ffff:127.0.0.1]:{p}/")),
        ("IPv4-mapped hex", format!("http://[::ffff:7f00:1]:{p}/")),
        ("IPv4-compatible", format!("http://[::127.0.0.1]:{p}/")),
        ("NAT64", format!("http://[64:ff9b::7f00:1]:{p}/")),
        ("6to4", format!("http://[2002:7f00:1::1]:{p}/")),
        ("localhost", format!("http://localhost:{p}/")),
        ("localhost.", format!("http://localhost.:{p}/")),
        ("LOCALHOST", format!("http://LOCALHOST:{p}/")),
        ("sub.localhost", format!("http://app.localhost:{p}/")),
        ("name to loopback", format!("http://evil.test:{p}/")),
        (
            "name to loopback, trailing dot",
            format!("http://evil.test.:{p}/"),
        ),
        (
            "name with one bad address",
            format!("http://mixed.test:{p}/"),
        ),
        ("name to IPv6 loopback", format!("http://v6.test:{p}/")),
        (
            "name to mapped loopback",
            format!("http://mapped.test:{p}/"),
        ),
        (
            "metadata name",
            "http://metadata.google.internal/computeMetadata/v1/".to_owned(),
        ),
        (
            "metadata IP",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ),
        (
            "metadata decimal",
            "http://2852039166/latest/meta-data/".to_owned(),
        ),
        (
            "metadata mapped",
            "http://[::ffff:a9fe:a9fe]/latest/".to_owned(),
        ),
        (
            "AWS IPv6 metadata",
            "http://[fd00:ec2::254]/latest/".to_owned(),
        ),
        ("Azure wire server", "http://168.63.129.16/".to_owned()),
        (
            "Alibaba metadata",
            "http://100.100.100.200/latest/meta-data/".to_owned(),
        ),
        ("private 10/8", "http://10.0.0.1/".to_owned()),
        ("private 172.16/12", "http://172.16.5.4/".to_owned()),
        ("private 192.168/16", "http://192.168.1.1/".to_owned()),
        ("private name", "http://private.test/".to_owned()),
        ("CGNAT", "http://100.64.0.1/".to_owned()),
        ("link-local", "http://169.254.1.1/".to_owned()),
        ("IETF 192.0.0/24", "http://192.0.0.1/".to_owned()),
        ("benchmarking", "http://198.18.0.1/".to_owned()),
        ("multicast", "http://224.0.0.1/".to_owned()),
        ("reserved", "http://240.0.0.1/".to_owned()),
        ("broadcast", "http://255.255.255.255/".to_owned()),
        ("unique-local", "http://[fc00::1]/".to_owned()),
        ("IPv6 link-local", "http://[fe80::1]/".to_owned()),
        ("IPv6 multicast", "http://[ff02::1]/".to_owned()),
        (
            "redirect to loopback",
            hop(&format!("http://127.0.0.1:{p}/")),
        ),
        (
            "redirect to localhost",
            hop(&format!("http://localhost:{p}/")),
        ),
        (
            "redirect to decimal",
            hop(&format!("http://2130706433:{p}/")),
        ),
        (
            "redirect to mapped",
            hop(&format!("http://[::ffff:127.0.0.1]:{p}/")),
        ),
        (
            "redirect to bad name",
            hop(&format!("http://evil.test:{p}/")),
        ),
        (
            "scheme-relative redirect",
            hop(&format!("//127.0.0.1:{p}/")),
        ),
        (
            "redirect to metadata",
            hop("http://169.254.169.254/latest/meta-data/"),
        ),
        (
            "redirect chain",
            hop(&hop(&hop(&format!("http://127.0.0.1:{p}/")))),
        ),
        ("redirect to file", hop("file:///etc/passwd")),
        ("file scheme", "file:///etc/passwd".to_owned()),
        ("gopher scheme", format!("gopher://127.0.0.1:{p}/")),
        ("ftp scheme", "ftp://example.com/x".to_owned()),
    ];
    for (what, url) in &cases {
        for (tool, args) in [
            (&get, json!({ "url": url })),
            (
                &request,
                json!({ "method": "POST", "url": url, "body": "x" }),
            ),
        ] {
            match tool.call(&ctx(), &args).await {
                Err(ToolError::InvalidArgs { message, .. }) => assert!(
                    message.contains("refused by the SSRF guard")
                        || message.contains("not allowed"),
                    "{what} ({url}): {message}"
                ),
                other => panic!("{what} ({url}) was not refused: {other:?}"),
            }
        }
    }
    assert_eq!(target.hits(), 0, "the internal server was reached");

    // The same machinery does reach what is allowed, so the zero above means
    // something: the hop server directly, through DNS, and via a redirect.
    for url in [
        format!("http://127.0.0.2:{p}/ok"),
        format!("http://hop.test:{p}/ok"),
        hop(&format!("http://127.0.0.2:{p}/ok")),
    ] {
        let Ok(ToolOutput::Value(v)) = get.call(&ctx(), &json!({ "url": url })).await else {
            panic!("{url} must be fetched");
        };
        assert_eq!(v["status"], 200, "{url}: {v}");
        assert_eq!(v["body"], "hop", "{url}: {v}");
    }
    let open = registry_with(
        "[tools.http_get]\nallow = [\"127.0.0.1\"]\n",
        dns.clone(),
        &[],
    )
    .await;
    let v = open
        .get("http_get")
        .unwrap()
        .call(&ctx(), &json!({ "url": format!("http://2130706433:{p}/") }))
        .await
        .unwrap();
    assert_eq!(
        v,
        ToolOutput::Value(json!({
            "status": 200, "url": format!("http://127.0.0.1:{p}/"), "content_type": "text/plain; charset=utf-8",
            "body": "secret", "truncated": false
        }))
    );
    assert_eq!(
        target.hits(),
        1,
        "allowed explicitly, the target is reachable"
    );
}

#[tokio::test]
async fn dns_rebinding_cannot_switch_the_address_after_the_check() {
    let (first, second) = twin_listeners().await;
    let target = spawn_target(first).await;
    let p = target.addr.port();
    serve(second, hop_router()).await;
    // First answer allowed (127.0.0.2), every later one internal (127.0.0.1).
    let dns = FakeDns::new(&[]);
    dns.add("rebind.test", &[&["127.0.0.2"], &["127.0.0.1"]]);
    let reg = registry_with(
        "[tools.http_get]\nallow = [\"127.0.0.2\"]\n",
        dns.clone(),
        &[],
    )
    .await;
    let get = reg.get("http_get").unwrap();

    let Ok(ToolOutput::Value(v)) = get
        .call(
            &ctx(),
            &json!({ "url": format!("http://rebind.test:{p}/ok") }),
        )
        .await
    else {
        panic!("first fetch must succeed");
    };
    assert_eq!(v["body"], "hop");
    assert_eq!(
        dns.lookups(),
        1,
        "one resolution, used for both check and connect"
    );
    // Later requests either reuse the checked connection or resolve again
    // and are refused; none reaches 127.0.0.1.
    for _ in 0..3 {
        let r = get
            .call(
                &ctx(),
                &json!({ "url": format!("http://rebind.test:{p}/ok") }),
            )
            .await;
        match r {
            Ok(ToolOutput::Value(v)) => assert_eq!(v["body"], "hop", "{v}"),
            Err(ToolError::InvalidArgs { message, .. }) => {
                assert!(message.contains("refused by the SSRF guard"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    let fresh = registry_with(
        "[tools.http_get]\nallow = [\"127.0.0.2\"]\n",
        dns.clone(),
        &[],
    )
    .await;
    let r = fresh
        .get("http_get")
        .unwrap()
        .call(
            &ctx(),
            &json!({ "url": format!("http://rebind.test:{p}/ok") }),
        )
        .await;
    assert!(matches!(r, Err(ToolError::InvalidArgs { .. })), "{r:?}");
    assert_eq!(target.hits(), 0);
}
