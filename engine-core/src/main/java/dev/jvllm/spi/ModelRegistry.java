package dev.jvllm.spi;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.JvllmException;
import dev.jvllm.config.ModelConfig;

import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.TreeMap;

/** The architectures found on the class path through {@link ServiceLoader}, by config.json name. */
public final class ModelRegistry {

    /** Thrown when config.json names no architecture jvllm has. */
    public static final class UnsupportedArchitectureException extends JvllmException {
        public UnsupportedArchitectureException(String message) {
            super(message);
        }
    }

    private static volatile Map<String, ModelArchitecture> byName;

    private ModelRegistry() {
    }

    private static Map<String, ModelArchitecture> registry() {
        Map<String, ModelArchitecture> map = byName;
        if (map == null) {
            map = new TreeMap<>();
            for (ModelArchitecture arch : ServiceLoader.load(ModelArchitecture.class)) {
                for (String name : arch.architectureNames()) map.putIfAbsent(name, arch);
            }
            byName = map;
        }
        return map;
    }

    /** Every architecture name served, sorted. */
    public static List<String> supportedArchitectures() {
        return List.copyOf(registry().keySet());
    }

    /** Thrown when config.json says the weights are quantized, which jvllm does not read yet. */
    public static final class UnsupportedQuantizationException extends JvllmException {
        public UnsupportedQuantizationException(String message) {
            super(message);
        }
    }

    /**
     * The architecture for the first of config.json's {@code architectures} that is served. A
     * quantized checkpoint ({@code quantization_config} or compressed-tensors' {@code compression_config})
     * is refused here, naming its method, rather than later with a missing or mistyped tensor.
     */
    public static ModelArchitecture find(ModelConfig config) {
        for (String field : List.of("quantization_config", "compression_config")) {
            JsonNode quantization = config.raw().get(field);
            if (quantization != null && !quantization.isNull()) {
                String method = quantization.path("quant_method").asText(quantization.path("format").asText("unnamed"));
                throw new UnsupportedQuantizationException(config.source() + ": the weights are quantized ('" + field
                        + "', quant_method '" + method + "'), and jvllm does not read quantized weights yet; use the "
                        + "model's unquantized (bf16, fp16 or fp32) checkpoint");
            }
        }
        List<String> wanted = config.architectures();
        if (wanted.isEmpty()) {
            throw new UnsupportedArchitectureException(config.source()
                    + ": no 'architectures' field, so the model class cannot be chosen");
        }
        for (String name : wanted) {
            ModelArchitecture arch = registry().get(name);
            if (arch != null) return arch;
        }
        String hint = registry().isEmpty() ? " (none: is jvllm-model-zoo on the class path?)" : "";
        throw new UnsupportedArchitectureException("model architecture " + wanted + " of " + config.source()
                + " is not supported; supported architectures" + hint + ": " + String.join(", ", registry().keySet()));
    }
}
