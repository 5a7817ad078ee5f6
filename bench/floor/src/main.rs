//! `credgate-bench-floor LISTEN UPSTREAM TOKEN`: forwards every request to `UPSTREAM`
//! (`host:port`, plain HTTP, pooled keep-alive connections) with `Authorization: Bearer TOKEN`,
//! and streams the response back. One thread, like the system under test's one core.

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Body = http_body_util::combinators::BoxBody<hyper::body::Bytes, hyper::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream, token] = args.as_slice() else {
        eprintln!("usage: credgate-bench-floor LISTEN UPSTREAM TOKEN");
        std::process::exit(2);
    };
    let listen: SocketAddr = listen.parse().expect("LISTEN is host:port");
    let upstream = upstream.clone();
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).expect("TOKEN is header-safe");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    println!("listening on {}", listener.local_addr().expect("address"));
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let (client, upstream, auth) = (client.clone(), upstream.clone(), auth.clone());
        tokio::spawn(async move {
            let service = service_fn(move |mut req: Request<Incoming>| {
                let (client, auth) = (client.clone(), auth.clone());
                let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
                let uri: Uri = format!("http://{upstream}{path}").parse().expect("uri");
                async move {
                    *req.uri_mut() = uri;
                    req.headers_mut().insert(AUTHORIZATION, auth);
                    req.headers_mut().remove(hyper::header::HOST);
                    let response = client.request(req).await;
                    Ok::<_, hyper_util::client::legacy::Error>(response?.map(|b| -> Body { b.boxed() }))
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
