package dev.jvllm.cuda;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.BackendProvider;
import dev.jvllm.weights.DType;

/**
 * Registers the {@link CudaBackend} as "cuda", preferred by "auto" where a CUDA device and the
 * driver, NVRTC and cuBLAS libraries are found. The backend runs on the device of its options' index
 * ("cuda:1"; device 0 for "cuda"), numbered as the driver numbers them (after CUDA_VISIBLE_DEVICES),
 * in the activation type of its options (float32 when none is given).
 */
public final class CudaBackendProvider implements BackendProvider {

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int priority() {
        return 100;
    }

    @Override
    public Availability availability() {
        try {
            CudaDriver driver = CudaDriver.get();
            if (driver.deviceCount() == 0) {
                return Availability.no("no CUDA device");
            }
            Nvrtc.get();
            Cublas.get();
            return Availability.yes();
        } catch (CudaException e) {
            return Availability.no(e.getMessage());
        } catch (UnsatisfiedLinkError | IllegalCallerException e) {
            return Availability.no("native access is not allowed (" + e.getMessage()
                    + "); run with --enable-native-access=ALL-UNNAMED");
        }
    }

    /** How many CUDA devices the driver shows this process (after CUDA_VISIBLE_DEVICES): 0 where CUDA cannot run. */
    public static int deviceCount() {
        try {
            return CudaDriver.get().deviceCount();
        } catch (CudaException | UnsatisfiedLinkError | IllegalCallerException e) {
            return 0;
        }
    }

    @Override
    public Backend create(BackendOptions options) {
        return CudaBackend.open(options.deviceIndex(), options.activationType() == null ? DType.F32 : options.activationType());
    }
}
