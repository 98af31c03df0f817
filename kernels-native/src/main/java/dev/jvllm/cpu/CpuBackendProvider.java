package dev.jvllm.cpu;

import dev.jvllm.JvllmException;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.BackendProvider;

/** Registers the {@link CpuBackend} as "cpu": always available, lowest priority for "auto". */
public final class CpuBackendProvider implements BackendProvider {

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public Availability availability() {
        return Availability.yes();
    }

    @Override
    public Backend create(BackendOptions options) {
        if (options.deviceIndex() != 0) {
            throw new JvllmException("device 'cpu:" + options.deviceIndex() + "': the cpu backend has one device; use 'cpu'");
        }
        return new CpuBackend(options);
    }
}
