package dev.jvllm.weights;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The tensors of a model directory (one safetensors file or a sharded set), memory-mapped and
 * validated when opened. Closing unmaps everything.
 */
public interface Checkpoint extends AutoCloseable {

    /**
     * Opens {@code model.safetensors}, else the shards listed in {@code model.safetensors.index.json},
     * else the only {@code *.safetensors} file of a directory, validating every file.
     *
     * @throws WeightsException naming the file (and tensor) that is missing, malformed or inconsistent
     */
    static Checkpoint open(Path modelDirectory) {
        return SafetensorsCheckpoint.open(modelDirectory);
    }

    /** Opens one safetensors file (validated like a checkpoint's). */
    static Checkpoint openFile(Path file) {
        return SafetensorsCheckpoint.openFile(file);
    }

    Set<String> names();

    Optional<WeightTensor> find(String name);

    /** The tensor, or a {@link WeightsException} naming it and the checkpoint. */
    WeightTensor get(String name);

    /** Whether the checkpoint holds {@code name}, without reading (or decoding) it. */
    default boolean contains(String name) {
        return find(name).isPresent();
    }

    /**
     * The weight {@code name} as 4-bit integers a backend may multiply by as they are (GPTQ's and
     * AWQ's), where this checkpoint holds it so; empty otherwise ({@link #get} then gives it
     * unquantized). The caller closes what it gets.
     */
    default Optional<Int4Weight> int4(String name) {
        return Optional.empty();
    }

    /**
     * Brings every tensor's pages into memory and into this process's page tables, reading them from
     * disk where the page cache lacks them: a forward pass would otherwise fault them in one by one
     * (on a 2.5 GB checkpoint already in the page cache that costs about 0.15 s of CPU).
     */
    default void loadIntoMemory() {
        loadIntoMemory(1);
    }

    /**
     * {@link #loadIntoMemory()} on {@code threads} threads (the caller and {@code threads - 1}
     * others), each taking tensors in turn: the page-table work is per page, and the kernel takes
     * faults of one mapping on several cores at once.
     */
    default void loadIntoMemory(int threads) {
        List<MemorySegment> mapped = new ArrayList<>();
        for (String name : names()) {
            MemorySegment data = get(name).data();
            if (data.isMapped()) {
                mapped.add(data);
            }
        }
        AtomicInteger next = new AtomicInteger();
        Runnable load = () -> {
            for (int i = next.getAndIncrement(); i < mapped.size(); i = next.getAndIncrement()) {
                mapped.get(i).load();
            }
        };
        List<Thread> helpers = new ArrayList<>();
        for (int t = 1; t < threads; t++) {
            helpers.add(Thread.ofPlatform().daemon().name("jvllm-weights-load-" + t).start(load));
        }
        load.run();
        boolean interrupted = false;
        for (Thread helper : helpers) {
            while (helper.isAlive()) {
                try {
                    helper.join();
                } catch (InterruptedException e) {
                    interrupted = true; // the pages are wanted either way; the caller sees the interrupt after
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    void close();
}
