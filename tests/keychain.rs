//! The secrets module against a real Secret Service (gnome-keyring). Needs a session bus with an
//! unlocked keyring, so it is ignored by a plain `cargo test`; `scripts/test-keychain.sh` runs it
//! inside `dbus-run-session` with `gnome-keyring-daemon --unlock`.

use std::sync::Arc;

use verbio::config::Config;
use verbio::secrets::{KeychainStore, SecretKind, SecretSource, SecretStore, Secrets};
use verbio::types::Secret;

fn unique_service() -> String {
    format!("app.verbio.test.{}", std::process::id())
}

#[test]
#[ignore = "needs a Secret Service: run scripts/test-keychain.sh"]
fn secrets_round_trip_through_the_os_keychain() {
    let service = unique_service();
    let store = Arc::new(KeychainStore::new(&service));
    for kind in SecretKind::ALL {
        store.delete(kind).expect("delete before the test");
    }
    let secrets = Secrets::new(store.clone(), |_| None);
    assert_eq!(
        secrets.status(SecretKind::OpenaiApiKey).unwrap().source,
        SecretSource::Missing
    );
    let status = secrets
        .set(SecretKind::OpenaiApiKey, "sk-test-keychain-0123456789")
        .expect("store in the keychain");
    assert_eq!(status.source, SecretSource::Keychain);
    assert_eq!(status.masked.as_deref(), Some("sk-…6789"));
    secrets
        .set(SecretKind::TwilioAuthToken, "tw-token-abcdefabcdef0000")
        .unwrap();
    secrets
        .set(
            SecretKind::LocalApiKey,
            "local-key-1234567890-abcdefghijklmnop",
        )
        .unwrap();

    // A second handle (as a later run of the app would have) reads the same values back.
    let again = KeychainStore::new(&service);
    assert_eq!(
        again.get(SecretKind::OpenaiApiKey).unwrap(),
        Some(Secret::new("sk-test-keychain-0123456789"))
    );

    // The config gets keychain values unless the environment sets them.
    let env_secrets = Secrets::new(store.clone(), |name| {
        (name == "TWILIO_AUTH_TOKEN").then(|| "from-env".to_string())
    });
    let mut config = Config {
        twilio_auth_token: Secret::new("from-env"),
        ..Config::default()
    };
    let filled = env_secrets.fill_config(&mut config).unwrap();
    assert_eq!(
        filled,
        vec![SecretKind::OpenaiApiKey, SecretKind::LocalApiKey]
    );
    assert_eq!(
        config.openai_api_key.expose(),
        "sk-test-keychain-0123456789"
    );
    assert_eq!(config.twilio_auth_token.expose(), "from-env");

    // Overwrite, then delete; a second delete is fine.
    secrets
        .set(SecretKind::OpenaiApiKey, "sk-replaced-key-9999999999")
        .unwrap();
    assert_eq!(
        again.get(SecretKind::OpenaiApiKey).unwrap(),
        Some(Secret::new("sk-replaced-key-9999999999"))
    );
    for kind in SecretKind::ALL {
        secrets.delete(kind).unwrap();
        secrets.delete(kind).unwrap();
        assert_eq!(again.get(kind).unwrap(), None);
    }
}
