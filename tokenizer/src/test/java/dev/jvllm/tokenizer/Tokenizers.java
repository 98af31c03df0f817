package dev.jvllm.tokenizer;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Loaded reference tokenizers shared by the tests of one JVM (loading Gemma 3 takes seconds). */
final class Tokenizers {

    private static final Map<String, HfTokenizer> LOADED = new ConcurrentHashMap<>();

    private Tokenizers() {}

    static HfTokenizer get(String name) {
        HfTokenizer loaded = LOADED.get(name);
        if (loaded != null) {
            return loaded;
        }
        synchronized (Tokenizers.class) {
            return LOADED.computeIfAbsent(name, ReferenceTokenizers::load);
        }
    }
}
