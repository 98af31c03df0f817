package dev.jvllm.tokenizer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps DJL from reaching the network when a tokenizer is created. DJL reads these settings from
 * environment variables or system properties; an application's own choice is left alone.
 */
final class DjlOfflineSettings {

    private static final Logger log = LoggerFactory.getLogger(DjlOfflineSettings.class);
    private static volatile boolean applied;

    private DjlOfflineSettings() {}

    static void apply() {
        if (applied) {
            return;
        }
        synchronized (DjlOfflineSettings.class) {
            if (applied) {
                return;
            }
            // Without it, every JVM's first tokenizer probes 169.254.169.254 and sends telemetry.
            setUnlessConfigured("OPT_OUT_TRACKING", "true");
            // Without it, a machine with CUDA makes DJL download a CUDA build of the tokenizers
            // library instead of using the CPU build shipped in its jar; tokenizing needs no GPU.
            setUnlessConfigured("RUST_FLAVOR", "cpu");
            applied = true;
        }
    }

    private static void setUnlessConfigured(String key, String value) {
        if (System.getenv(key) == null && System.getProperty(key) == null) {
            System.setProperty(key, value);
            log.debug("Set system property {}={} for DJL", key, value);
        }
    }
}
