package dev.jvllm.spi;

import dev.jvllm.JvllmException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.config.Quantization;

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
    private static volatile Map<String, ModelArchitecture> byModelType;
    private static volatile GenericArchitecture generic;
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(ModelRegistry.class);

    private ModelRegistry() {
    }

    private static Map<String, ModelArchitecture> registry() {
        Map<String, ModelArchitecture> map = byName;
        if (map == null) {
            map = new TreeMap<>();
            Map<String, ModelArchitecture> types = new TreeMap<>();
            for (ModelArchitecture arch : ServiceLoader.load(ModelArchitecture.class)) {
                if (arch instanceof GenericArchitecture fallback && generic == null) generic = fallback;
                for (String name : arch.architectureNames()) map.putIfAbsent(name, arch);
                for (String type : arch.modelTypes()) types.putIfAbsent(type, arch);
            }
            byModelType = types;
            byName = map;
        }
        return map;
    }

    /** Every architecture name served, sorted. */
    public static List<String> supportedArchitectures() {
        return List.copyOf(registry().keySet());
    }

    /** Thrown when config.json says the weights are quantized in a way jvllm does not read yet. */
    public static final class UnsupportedQuantizationException extends JvllmException {
        public UnsupportedQuantizationException(String message) {
            super(message);
        }
    }

    /** Names of task heads that are not language models: classifiers, taggers, question answerers, reward models. */
    private static final java.util.regex.Pattern TASK_HEAD = java.util.regex.Pattern.compile(
            ".*For(SequenceClassification|TokenClassification|QuestionAnswering|MultipleChoice|RewardModel|ProcessRewardModel).*");

    /**
     * The architecture for the first of config.json's {@code architectures} that is served. A
     * checkpoint quantized in a way jvllm does not read ({@link Quantization#refusal}) is refused
     * here, naming its method and why, rather than later with a missing or mistyped tensor.
     */
    public static ModelArchitecture find(ModelConfig config) {
        Quantization.of(config).filter(q -> !q.served()).ifPresent(q -> {
            throw new UnsupportedQuantizationException(config.source() + ": the weights are quantized ('" + q.field()
                    + "', quant_method '" + q.method() + "'): " + q.refusal() + "; use the model's unquantized (bf16, fp16 "
                    + "or fp32), FP8, GPTQ or AWQ checkpoint");
        });
        List<String> wanted = config.architectures();
        Map<String, ModelArchitecture> served = registry();
        for (String name : wanted) {
            ModelArchitecture arch = served.get(name);
            if (arch != null) return arch;
        }
        // A task head of a class not served (a classifier, a token tagger, a question answerer) is not a
        // causal language model: loaded by its model_type it would generate from weights meant for another head.
        for (String name : wanted) {
            if (TASK_HEAD.matcher(name).matches()) {
                throw new UnsupportedArchitectureException(config.source() + ": " + name + " is a task head jvllm does not serve"
                        + " (it classifies with " + served.keySet().stream().filter(n -> n.endsWith("ForSequenceClassification")).sorted()
                        .toList() + "); it is not loaded as its family's language model");
            }
        }
        // As Transformers' Auto classes: a class chosen by model_type, where no custom code is
        // declared (with auto_map, the checkpoint's own class would run there, which jvllm cannot know).
        String type = config.modelType();
        ModelArchitecture byType = type.isEmpty() || config.hasRemoteCode() ? null : byModelType.get(type);
        if (byType != null) {
            log.warn("{}: architectures {} names no class jvllm serves; loading it by its model_type '{}' as {}, as "
                    + "Transformers' Auto classes would", config.source(), wanted, type, byType.architectureNames().getFirst());
            return byType;
        }
        if (wanted.isEmpty()) {
            throw new UnsupportedArchitectureException(config.source() + ": no 'architectures' field, and "
                    + (type.isEmpty() ? "no 'model_type'" : "model_type '" + type + "' is not one jvllm loads by type")
                    + ", so the model class cannot be chosen");
        }
        // Last, as vLLM falls back on Transformers' implementation: the generic decoder, where the
        // config has nothing it would ignore (the checkpoint's tensors are checked when it loads).
        String genericRefusal = generic == null ? "no generic class on the class path" : generic.refusal(config).orElse(null);
        if (genericRefusal == null) {
            log.warn("{}: no native class serves {}{}; loading it with the generic decoder ({}), from what its config and "
                    + "tensor names show. Its outputs are not checked against the model's own code: compare a few "
                    + "with Transformers' before relying on them", config.source(), wanted,
                    config.hasRemoteCode() ? " (its config declares custom code, which jvllm never runs)" : "",
                    generic.getClass().getSimpleName());
            return generic;
        }
        String hint = registry().isEmpty() ? " (none: is jvllm-model-zoo on the class path?)" : "";
        throw new UnsupportedArchitectureException("model architecture " + wanted + " of " + config.source()
                + " is not supported" + (config.hasRemoteCode() && !type.isEmpty() && byModelType.containsKey(type)
                ? " (its config declares custom code, so it is not loaded by its model_type '" + type + "')" : "")
                + "; the generic decoder does not take it either: " + genericRefusal
                + "; supported architectures" + hint + ": " + String.join(", ", registry().keySet()));
    }
}
