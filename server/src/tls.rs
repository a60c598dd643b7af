//! TLS set-up, in one place: the whole binary uses rustls with the ring provider (sqlx, reqwest and git
//! fetches over https), and outgoing HTTP clients are built here so they all share it.
//!
//! reqwest is built with `rustls-no-provider`: no second crypto provider is compiled in, so rustls
//! needs ring installed as the process default before the first TLS handshake.

/// Installs ring as rustls' process-wide crypto provider. Idempotent: a provider already installed
/// (by an earlier call, or a test harness) stays.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder over the process's TLS set-up, with Atrium's user agent.
pub fn http_client() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().user_agent(concat!("atrium/", env!("CARGO_PKG_VERSION")))
}
