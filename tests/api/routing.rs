//! MX routing against a real DNS server (dnsmasq on a loopback port).

use std::net::SocketAddr;

use tern::config::{DnsSettings, Settings, TlsPolicy, TransportRule};
use tern::delivery::routing::{self, Destination, Route, RouteError};

use crate::helpers::Dnsmasq;

fn hosts(route: Route) -> Vec<String> {
    match route {
        Route::Hosts(list) => list.into_iter().map(|d| d.host).collect(),
        Route::NullMx => panic!("unexpected null MX"),
    }
}

#[tokio::test]
async fn mx_order_implicit_mx_null_mx_and_overrides() {
    let port = crate::helpers::free_port();
    let _dns = Dnsmasq::start(
        port,
        &[
            "--mx-host=multi.test,mx2.multi.test,20".into(),
            "--mx-host=multi.test,mx1.multi.test,10".into(),
            "--host-record=mx1.multi.test,127.0.0.2".into(),
            "--host-record=mx2.multi.test,127.0.0.3".into(),
            "--host-record=plain.test,127.0.0.4".into(),
            "--mx-host=null.test,.,0".into(),
        ],
    );
    let dns = DnsSettings {
        nameservers: vec![SocketAddr::from(([127, 0, 0, 1], port))],
        timeout_ms: 3000,
        ..Settings::default().dns
    };
    let resolver = tern::dns::resolver::build(&dns).unwrap();
    let mut delivery = Settings::default().delivery;
    delivery.port = 2525;

    let route = routing::route(&resolver, &delivery, "multi.test").await.unwrap();
    assert_eq!(hosts(route.clone()), ["mx1.multi.test", "mx2.multi.test"]);
    if let Route::Hosts(list) = &route {
        assert!(
            list.iter()
                .all(|d| d.port == 2525 && d.tls == TlsPolicy::Opportunistic)
        );
    }
    let addresses = routing::addresses(&resolver, "mx2.multi.test").await.unwrap();
    assert_eq!(addresses, ["127.0.0.3".parse::<std::net::IpAddr>().unwrap()]);

    // No MX: the domain itself is the implicit MX (RFC 5321 §5.1).
    assert_eq!(
        hosts(routing::route(&resolver, &delivery, "plain.test").await.unwrap()),
        ["plain.test"]
    );
    // RFC 7505: a domain that accepts no mail.
    assert_eq!(
        routing::route(&resolver, &delivery, "null.test").await,
        Ok(Route::NullMx)
    );
    assert_eq!(
        routing::route(&resolver, &delivery, "missing.test").await,
        Err(RouteError::NoSuchDomain("missing.test".into()))
    );

    // Transport rules win over the smart host, which wins over MX.
    delivery.smart_host = Some("relay.internal:2526".into());
    delivery.transports = vec![TransportRule {
        domain: "multi.test".into(),
        host: "127.0.0.9".into(),
        port: Some(2600),
        tls: TlsPolicy::Opportunistic,
        ca_file: None,
        require_tls: true,
    }];
    assert_eq!(
        routing::route(&resolver, &delivery, "MULTI.test").await.unwrap(),
        Route::Hosts(vec![Destination {
            host: "127.0.0.9".into(),
            port: 2600,
            tls: TlsPolicy::Verify,
            ca_file: None,
            explicit: true,
        }])
    );
    assert_eq!(
        hosts(routing::route(&resolver, &delivery, "plain.test").await.unwrap()),
        ["relay.internal"]
    );
    // The smart host has its own TLS policy.
    delivery.smart_host_tls = TlsPolicy::Required;
    let Route::Hosts(smart) = routing::route(&resolver, &delivery, "plain.test").await.unwrap() else {
        panic!("the smart host is a route");
    };
    assert_eq!((smart[0].port, smart[0].tls), (2526, TlsPolicy::Required));
}
