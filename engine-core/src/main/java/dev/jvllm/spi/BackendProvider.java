package dev.jvllm.spi;

/** Service-provider entry for a {@link Backend}, found through {@link java.util.ServiceLoader}. */
public interface BackendProvider {

    /** "cpu", "cuda", ... */
    String name();

    /** Higher wins when the device is "auto". */
    int priority();

    /** Whether the backend can run here (a device, its libraries); with the reason when not. */
    Availability availability();

    Backend create(BackendOptions options);

    record Availability(boolean available, String reason) {
        public static Availability yes() {
            return new Availability(true, "");
        }

        public static Availability no(String reason) {
            return new Availability(false, reason);
        }
    }
}
