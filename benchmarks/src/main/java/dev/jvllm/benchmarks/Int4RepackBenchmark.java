package dev.jvllm.benchmarks;

import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.Int4Weight;
import dev.jvllm.weights.PackedIntCheckpoint;

import java.nio.file.Path;
import java.util.List;

/**
 * How long the host takes to repack a GPTQ checkpoint's 4-bit projections for a backend that keeps
 * them 4-bit ({@link PackedIntCheckpoint#int4}), or with {@code --decode} to decode them to bf16 for
 * one that does not (the CPU's), the part of a 4-bit model's load that a bf16 one does not have:
 * every projection of a random Llama checkpoint in AutoGPTQ's 4-bit tensors, the files read into
 * memory first, three rounds.
 * <pre>
 * java ... dev.jvllm.benchmarks.Int4RepackBenchmark [--shape SPEC (default: Llama-3.2-1B, int4-group=128)] [--cache DIR] [--decode]
 * </pre>
 */
public final class Int4RepackBenchmark {

    private Int4RepackBenchmark() {
    }

    public static void main(String[] args) {
        LlamaShape shape = LlamaShape.LLAMA_3_2_1B.with("int4-group=128");
        Path cache = RandomLlamaCheckpoint.DEFAULT_CACHE;
        boolean decode = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--shape" -> shape = shape.with(args[++i]);
                case "--cache" -> cache = Path.of(args[++i]);
                case "--decode" -> decode = true;
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (shape.int4Group() == 0) throw new IllegalArgumentException("the shape has no 4-bit projections (int4-group=N)");
        Path model = RandomLlamaCheckpoint.ensure(shape, cache);
        for (int round = 0; round < 3; round++) {
            try (Checkpoint inner = Checkpoint.open(model)) {
                inner.loadIntoMemory(Runtime.getRuntime().availableProcessors());
                PackedIntCheckpoint packed = new PackedIntCheckpoint(inner, DType.BF16, PackedIntCheckpoint.Format.GPTQ, 4, shape.int4Group());
                List<String> names = packed.names().stream().filter(n -> n.endsWith("_proj.weight")).toList();
                long start = System.nanoTime(), bytes = 0;
                for (String name : names) {
                    if (decode) {
                        bytes += packed.get(name).data().byteSize();
                        packed.releaseDecoded();
                        continue;
                    }
                    try (Int4Weight weight = packed.int4(name).orElseThrow()) {
                        bytes += weight.words().byteSize();
                    }
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                System.out.printf("{\"what\": \"%s\", \"round\": %d, \"weights\": %d, \"mb\": %.0f, \"seconds\": %.3f, "
                        + "\"threads\": %d}%n", decode ? "int4_decode_bf16" : "int4_repack", round, names.size(), bytes / 1e6, seconds,
                        Runtime.getRuntime().availableProcessors());
            }
        }
    }
}
