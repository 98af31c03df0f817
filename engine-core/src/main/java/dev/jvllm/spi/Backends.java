package dev.jvllm.spi;

import dev.jvllm.JvllmException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;

/** Chooses a {@link Backend} among those found through {@link ServiceLoader}. */
public final class Backends {

    private static final Logger log = LoggerFactory.getLogger(Backends.class);

    private Backends() {
    }

    /**
     * @param device "auto" (the available backend of highest priority), or a backend name ("cpu", "cuda")
     */
    public static Backend create(String device, BackendOptions options) {
        List<BackendProvider> providers = new ArrayList<>();
        ServiceLoader.load(BackendProvider.class).forEach(providers::add);
        providers.sort(Comparator.comparingInt(BackendProvider::priority).reversed());
        List<String> reasons = new ArrayList<>();
        for (BackendProvider p : providers) {
            if (!device.equals("auto") && !device.equals(p.name())) continue;
            BackendProvider.Availability a = p.availability();
            if (a.available()) {
                log.info("backend: {}", p.name());
                return p.create(options);
            }
            reasons.add(p.name() + ": " + a.reason());
            if (device.equals("auto")) log.info("backend {} not available: {}", p.name(), a.reason());
        }
        throw new JvllmException("no backend for device '" + device + "'"
                + (providers.isEmpty() ? " (none found: is jvllm-kernels-native on the class path?)" : "")
                + (reasons.isEmpty() ? "" : "; " + String.join("; ", reasons)));
    }
}
