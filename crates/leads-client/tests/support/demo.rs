// A real leads server for the rustdoc examples, pulled in with `include!` (a doctest cannot
// `mod` a file): a fresh SQLite database with one company of 250 leads and a user, served on a
// free port, with WHOP_API_KEY and WHOP_BASE_URL pointing at it. Each doctest is a process of
// its own, so setting the environment here is safe.

#[allow(dead_code)]
struct Demo {
    company: String,
    user: String,
    products: Vec<String>,
    key: String,
    base_url: String,
    _dir: tempfile::TempDir,
}

impl Demo {
    async fn start() -> Demo {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("leads.db").display());
        let stores = leads_server::storage::open(&url).await.expect("open store");
        let options = leads_server::seed::SeedOptions {
            companies: 1,
            leads_per_company: 250,
            products_per_company: 3,
        };
        let report = leads_server::seed::seed(&stores.directory, options, |_| {})
            .await
            .expect("seed");
        let company = &report.companies[0];
        let user = leads_server::admin::create_user(stores.directory.as_ref(), "demo_user", None, None)
            .await
            .expect("user");
        let config = leads_server::app::Config {
            database_url: url,
            ..Default::default()
        };
        let app = leads_server::app::build_with_stores(stores, &config)
            .await
            .expect("build app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/api/v1", listener.local_addr().expect("addr"));
        tokio::spawn(leads_server::app::serve(
            listener,
            app.router,
            leads_server::server::ServerLimits::default(),
            std::future::pending(),
        ));
        std::env::set_var("WHOP_API_KEY", &company.key);
        std::env::set_var("WHOP_BASE_URL", &base_url);
        Demo {
            company: company.id.clone(),
            user: user.id,
            products: company.products.clone(),
            key: company.key.clone(),
            base_url,
            _dir: dir,
        }
    }
}
