package dev.jvllm.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** The GPU and engine benchmarks' output: one JSON object per measurement, one line each on stdout. */
final class JsonLines {

    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonLines() {
    }

    /** Prints {@code {"what": what, name: value, ...}} from alternating names and values, and flushes. */
    static void emit(String what, Object... namesAndValues) {
        ObjectNode line = JSON.createObjectNode();
        line.put("what", what);
        for (int i = 0; i < namesAndValues.length; i += 2) {
            line.putPOJO((String) namesAndValues[i], namesAndValues[i + 1]);
        }
        System.out.println(line);
        System.out.flush();
    }
}
