fn main() {
    // Tauri's build step (capabilities, icons, context) only runs for the desktop build;
    // the headless core builds without WebKit.
    #[cfg(feature = "desktop")]
    tauri_build::build();
}
