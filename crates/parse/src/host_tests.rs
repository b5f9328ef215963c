use http::HeaderValue;

use super::*;

fn domains() -> Domains {
    Domains {
        tunnel: Some("tunnel.example.com".into()),
        apps: Some("apps.example.com".into()),
    }
}

fn site(raw: &str) -> Result<Site, BadHost> {
    normalize(raw).map(|h| classify(&h, &domains()))
}

#[test]
fn tunnels_by_one_label() {
    let t = |n: &str| Ok(Site::Tunnel(n.into()));
    assert_eq!(site("myapp.tunnel.example.com"), t("myapp"));
    assert_eq!(site("MyApp.Tunnel.Example.COM"), t("myapp"));
    assert_eq!(site("myapp.tunnel.example.com:8080"), t("myapp"));
    assert_eq!(site("myapp.tunnel.example.com."), t("myapp"));
    assert_eq!(site("myapp.tunnel.example.com.:443"), t("myapp"));
    assert_eq!(site("a.b.tunnel.example.com"), Ok(Site::NotServed));
    assert_eq!(site("tunnel.example.com"), Ok(Site::NotServed));
    assert_eq!(site("-x.tunnel.example.com"), Ok(Site::NotServed));
    assert_eq!(site("x_y.tunnel.example.com"), Ok(Site::NotServed));
    assert_eq!(site("xtunnel.example.com"), Ok(Site::Main));
    assert_eq!(site("myapp.tunnel.example.com.evil"), Ok(Site::Main));
}

#[test]
fn apps_by_port_and_node() {
    let a = |port, node: &str| {
        Ok(Site::App {
            port,
            node: node.into(),
        })
    };
    assert_eq!(site("8080-web-1.apps.example.com"), a(8080, "web-1"));
    assert_eq!(site("8080-Web-1.APPS.example.com:80"), a(8080, "web-1"));
    assert_eq!(site("08080-web.apps.example.com"), Ok(Site::NotServed));
    assert_eq!(site("70000-web.apps.example.com"), Ok(Site::NotServed));
    assert_eq!(site("0-web.apps.example.com"), Ok(Site::NotServed));
    assert_eq!(site("web.apps.example.com"), Ok(Site::NotServed));
    assert_eq!(site("8080-.apps.example.com"), Ok(Site::NotServed));
}

#[test]
fn nested_domains_prefer_the_longer() {
    let d = Domains {
        tunnel: Some("example.com".into()),
        apps: Some("apps.example.com".into()),
    };
    assert_eq!(
        classify("80-n.apps.example.com", &d),
        Site::App {
            port: 80,
            node: "n".into()
        }
    );
    assert_eq!(classify("apps.example.com", &d), Site::NotServed);
    assert_eq!(classify("x.example.com", &d), Site::Tunnel("x".into()));
}

#[test]
fn malformed_hosts_are_refused() {
    for bad in [
        "",
        ":80",
        "a..b",
        "a.b..",
        ".a.b",
        "a b",
        "user@host",
        "host:",
        "host:0",
        "host:65536",
        "host:80:80",
        "host:8o",
        "127.0.0.1x.1",
        "1.2.3.4.5",
        "999.1.1.1",
        "[::1",
        "[::1]x",
        "[zz::1]",
        "::1",
        &"a".repeat(64),
        &format!("{}.com", "a.".repeat(150)),
        "exa%6dple.com",
        "a/b",
    ] {
        assert_eq!(normalize(bad), Err(BadHost), "{bad:?}");
    }
    assert_eq!(normalize("[::1]:8080").unwrap(), "[::1]");
    assert_eq!(normalize("127.0.0.1:8080").unwrap(), "127.0.0.1");
    assert_eq!(normalize("Gw_1.Local").unwrap(), "gw_1.local");
}

#[test]
fn one_host_only() {
    let mut h = HeaderMap::new();
    h.append(HOST, HeaderValue::from_static("a.tunnel.example.com"));
    let uri: Uri = "/".parse().unwrap();
    assert_eq!(
        request_host(&uri, &h).unwrap().as_deref(),
        Some("a.tunnel.example.com")
    );
    h.append(HOST, HeaderValue::from_static("b.tunnel.example.com"));
    assert_eq!(request_host(&uri, &h), Err(BadHost));
    let absolute: Uri = "http://b.tunnel.example.com/".parse().unwrap();
    let mut one = HeaderMap::new();
    one.insert(HOST, HeaderValue::from_static("a.tunnel.example.com"));
    assert_eq!(request_host(&absolute, &one), Err(BadHost));
    assert_eq!(request_host(&uri, &HeaderMap::new()), Ok(None));
    let mut bin = HeaderMap::new();
    bin.insert(HOST, HeaderValue::from_bytes(b"caf\xc3\xa9.com").unwrap());
    assert_eq!(request_host(&uri, &bin), Err(BadHost));
}
