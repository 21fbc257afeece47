//! One TLS crypto provider for the whole process.
//!
//! rustls picks its provider from crate features, and refuses to guess when more than one is compiled
//! in: the `ngrok` SDK brings aws-lc-rs while reqwest and tungstenite bring ring, so without this every
//! TLS connection (OpenAI, Twilio, ngrok) would panic. Every entry point that may open TLS calls
//! [`install_crypto_provider`]; only the first call does anything.

/// Installs ring as the process-wide rustls provider, unless one is installed already.
pub fn install_crypto_provider() {
    // `Err` only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_provider_is_available_after_install() {
        super::install_crypto_provider();
        super::install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
