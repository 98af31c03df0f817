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
     * @param device "auto" (the available backend of highest priority), a backend name ("cpu", "cuda"),
     *               or a name and a device index ("cuda:1", as the backend's driver numbers its devices)
     * @throws JvllmException naming the device where it is malformed, or no backend of it can run here
     */
    public static Backend create(String device, BackendOptions options) {
        int colon = device.indexOf(':');
        String name = colon < 0 ? device : device.substring(0, colon);
        if (colon >= 0) {
            if (name.equals("auto") || name.isEmpty()) {
                throw new JvllmException("device '" + device + "': a device index needs a backend's name, e.g. 'cuda:1'");
            }
            options = options.onDevice(deviceIndex(device, device.substring(colon + 1)));
        }
        List<BackendProvider> providers = new ArrayList<>();
        ServiceLoader.load(BackendProvider.class).forEach(providers::add);
        providers.sort(Comparator.comparingInt(BackendProvider::priority).reversed());
        List<String> reasons = new ArrayList<>();
        for (BackendProvider p : providers) {
            if (!name.equals("auto") && !name.equals(p.name())) continue;
            BackendProvider.Availability a = p.availability();
            if (a.available()) {
                log.info("backend: {}{}", p.name(), colon < 0 ? "" : " device " + options.deviceIndex());
                return p.create(options);
            }
            reasons.add(p.name() + ": " + a.reason());
            if (name.equals("auto")) log.info("backend {} not available: {}", p.name(), a.reason());
        }
        throw new JvllmException("no backend for device '" + device + "'"
                + (providers.isEmpty() ? " (none found: is jvllm-kernels-native on the class path?)" : "")
                + (reasons.isEmpty() ? "" : "; " + String.join("; ", reasons)));
    }

    private static int deviceIndex(String device, String index) {
        if (!index.matches("[0-9]{1,4}")) {
            throw new JvllmException("device '" + device + "': the index after ':' must be a number from 0, e.g. 'cuda:1'");
        }
        return Integer.parseInt(index);
    }
}
