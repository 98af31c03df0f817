package dev.jvllm.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.LoraRequest;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightsException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A PEFT LoRA adapter read from its directory: {@code adapter_config.json} ({@code r},
 * {@code lora_alpha}, {@code use_rslora}) and {@code adapter_model.safetensors}, whose
 * {@code <module>.lora_A.weight} [r, in] and {@code <module>.lora_B.weight} [out, r] update the base
 * model's {@code <module>.weight} by {@code scale · B · A}, scale = alpha / r (alpha / √r with
 * rsLoRA). Forms it does not read are refused by name: DoRA, bias training, per-module ranks or
 * alphas, modules saved whole, embedding adapters, fan-in-fan-out (Conv1D) layouts.
 */
public final class LoraAdapter implements AutoCloseable {

    /** One projection's update: {@code weightName} is the base model's tensor it adds to. */
    public record Module(String weightName, WeightTensor a, WeightTensor b) {
    }

    private static final String PEFT_PREFIX = "base_model.model.";

    private final LoraRequest request;
    private final int rank;
    private final float scale;
    private final List<Module> modules;
    private final Checkpoint weights;

    private LoraAdapter(LoraRequest request, int rank, float scale, List<Module> modules, Checkpoint weights) {
        this.request = request;
        this.rank = rank;
        this.scale = scale;
        this.modules = List.copyOf(modules);
        this.weights = weights;
    }

    /**
     * Reads the adapter of {@code request}, refusing a rank above {@code maxRank}.
     *
     * @throws WeightsException naming the file, field or tensor at fault
     */
    public static LoraAdapter load(LoraRequest request, int maxRank) {
        Path dir = request.path();
        Path configFile = dir.resolve("adapter_config.json");
        if (!Files.isRegularFile(configFile)) {
            throw new WeightsException("LoRA adapter '" + request.name() + "': " + configFile + " does not exist");
        }
        JsonNode config;
        try {
            config = new ObjectMapper().readTree(configFile.toFile());
        } catch (IOException e) {
            throw new WeightsException("LoRA adapter '" + request.name() + "': " + configFile + " is not readable JSON: " + e.getMessage());
        }
        String where = "LoRA adapter '" + request.name() + "' (" + configFile + ")";
        int rank = config.path("r").asInt(0);
        if (rank < 1) throw new WeightsException(where + ": 'r' must be a positive rank");
        if (rank > maxRank) {
            throw new WeightsException(where + ": rank " + rank + " is above the engine's maxLoraRank " + maxRank);
        }
        double alpha = config.path("lora_alpha").asDouble(8);
        refuseIf(config.path("use_dora").asBoolean(false), where, "DoRA ('use_dora') is not supported");
        refuseIf(config.path("fan_in_fan_out").asBoolean(false), where, "'fan_in_fan_out' (Conv1D) layouts are not supported");
        refuseIf(!config.path("bias").asText("none").equals("none"), where, "trained biases ('bias': '"
                + config.path("bias").asText() + "') are not supported");
        refuseIf(nonEmpty(config.path("modules_to_save")), where, "'modules_to_save' (whole modules) is not supported");
        refuseIf(nonEmpty(config.path("rank_pattern")) || nonEmpty(config.path("alpha_pattern")), where,
                "per-module ranks or alphas ('rank_pattern', 'alpha_pattern') are not supported");
        float scale = (float) (config.path("use_rslora").asBoolean(false) ? alpha / Math.sqrt(rank) : alpha / rank);

        Path file = dir.resolve("adapter_model.safetensors");
        if (!Files.isRegularFile(file)) {
            throw new WeightsException("LoRA adapter '" + request.name() + "': " + file + " does not exist (only safetensors adapters are read)");
        }
        Checkpoint weights = Checkpoint.openFile(file);
        try {
            List<Module> modules = new ArrayList<>();
            for (String name : weights.names().stream().sorted().toList()) {
                if (name.endsWith(".lora_B.weight")) continue;
                if (!name.endsWith(".lora_A.weight")) {
                    throw new WeightsException("LoRA adapter '" + request.name() + "': tensor '" + name + "' in " + file.getFileName()
                            + " is not a lora_A or lora_B weight, which is all this engine reads");
                }
                String module = name.substring(0, name.length() - ".lora_A.weight".length());
                WeightTensor a = weights.get(name);
                WeightTensor b = weights.find(module + ".lora_B.weight").orElseThrow(() -> new WeightsException(
                        "LoRA adapter '" + request.name() + "': '" + name + "' has no " + module + ".lora_B.weight"));
                if (a.rank() != 2 || b.rank() != 2 || a.dim(0) != rank || b.dim(1) != rank) {
                    throw new WeightsException("LoRA adapter '" + request.name() + "': '" + a.name() + "' " + shape(a) + " and '"
                            + b.name() + "' " + shape(b) + " should be [" + rank + ", in] and [out, " + rank + "]");
                }
                String base = module.startsWith(PEFT_PREFIX) ? module.substring(PEFT_PREFIX.length()) : module;
                modules.add(new Module(base + ".weight", a, b));
            }
            if (modules.isEmpty()) throw new WeightsException("LoRA adapter '" + request.name() + "': " + file + " holds no lora_A weights");
            return new LoraAdapter(request, rank, scale, modules, weights);
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    public LoraRequest request() {
        return request;
    }

    public int rank() {
        return rank;
    }

    /** The factor of {@code B · A}: alpha / r, or alpha / √r with rsLoRA. */
    public float scale() {
        return scale;
    }

    public List<Module> modules() {
        return modules;
    }

    @Override
    public void close() {
        weights.close();
    }

    private static void refuseIf(boolean refused, String where, String why) {
        if (refused) throw new WeightsException(where + ": " + why);
    }

    private static boolean nonEmpty(JsonNode node) {
        return !node.isMissingNode() && !node.isNull() && !(node.isContainerNode() && node.isEmpty());
    }

    private static String shape(WeightTensor t) {
        return java.util.Arrays.toString(t.shape());
    }
}
