package dev.jvllm.structured;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * vLLM's (xgrammar's) structural tag as a grammar: free text in which each trigger opens a tag,
 * one of the structures whose {@code begin} starts with it, then a JSON document valid against that
 * structure's schema, then its {@code end}; free text again after it. As xgrammar reads the text as
 * it comes, the first trigger completed dispatches (one that straddles free text and a begin counts:
 * after free text {@code <}, a begin {@code <fn=} is refused when {@code <<} is a trigger). Free text
 * holds no other trigger, and the output may end only in free text. Tool calls written as
 * {@code <function=name>{...}</function>} between prose are the common use.
 */
public final class StructuralTag {

    /** One kind of tag: its opening text, the schema of what it holds, its closing text. */
    public record Structure(String begin, JsonNode schema, String end) {
    }

    private StructuralTag() {
    }

    /**
     * The grammar of free text with tags of {@code structures}, each opened where one of
     * {@code triggers} is written.
     *
     * @throws IllegalArgumentException naming an empty list, an empty trigger, a structure whose
     *                                  begin starts with no trigger, or a schema it cannot follow
     */
    public static GrammarRules rules(List<Structure> structures, List<String> triggers) {
        if (structures.isEmpty()) throw new IllegalArgumentException("a structural tag needs at least one structure");
        if (triggers.isEmpty()) throw new IllegalArgumentException("a structural tag needs at least one trigger");
        for (String trigger : triggers) {
            if (trigger == null || trigger.isEmpty()) throw new IllegalArgumentException("a structural tag's trigger is empty");
        }
        Map<String, String> rules = new LinkedHashMap<>();
        rules.put("root", GrammarRules.call("free0"));
        Map<String, String> schemaRules = new LinkedHashMap<>();
        for (int k = 0; k < structures.size(); k++) {
            Structure s = structures.get(k);
            if (s.begin() == null || s.end() == null || s.schema() == null) {
                throw new IllegalArgumentException("structure " + k + " needs a begin, a schema and an end");
            }
            if (triggers.stream().noneMatch(s.begin()::startsWith)) {
                throw new IllegalArgumentException("structure " + k + "'s begin '" + s.begin() + "' starts with none of the triggers " + triggers);
            }
            String prefix = "s" + k + "-";
            GrammarRules schema;
            try {
                schema = JsonSchemaRegex.rules(s.schema(), JsonSchemaRegex.ONE_SPACE);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("structure " + k + "'s schema: " + e.getMessage(), e);
            }
            schema.rules().forEach((name, pattern) -> schemaRules.put(prefix + name, renameCalls(pattern, prefix)));
        }
        rules.putAll(freeText(triggers, structures));
        rules.putAll(schemaRules);
        return new GrammarRules(rules);
    }

    /**
     * Free text: an Aho-Corasick automaton over the triggers, each of its states a rule
     * ({@code free<i>}) that reads a character and goes on in the state it leads to, or ends. The
     * character that completes a trigger leads instead to that state's dispatch
     * ({@code dispatch<i>}): the rest of each begin that starts with a trigger completed there, its
     * schema's document, its end, then free text again. So the first trigger completed opens the tag,
     * and free text is one parse stack however many structures there are.
     */
    private static Map<String, String> freeText(List<String> triggers, List<Structure> structures) {
        // The trie of the triggers: goto by character, and the triggers that end at each state.
        List<Map<Character, Integer>> next = new ArrayList<>();
        List<List<String>> ending = new ArrayList<>();
        next.add(new HashMap<>());
        ending.add(new ArrayList<>());
        for (String trigger : triggers) {
            int state = 0;
            for (char c : trigger.toCharArray()) {
                Integer known = next.get(state).get(c);
                if (known == null) {
                    next.add(new HashMap<>());
                    ending.add(new ArrayList<>());
                    known = next.size() - 1;
                    next.get(state).put(c, known);
                }
                state = known;
            }
            if (!ending.get(state).contains(trigger)) ending.get(state).add(trigger);
        }
        // Failure links, breadth first; a state also completes the triggers its failure state completes (its suffixes).
        int[] fail = new int[next.size()];
        List<Integer> order = new ArrayList<>(List.of(0));
        for (int i = 0; i < order.size(); i++) {
            int state = order.get(i);
            for (var edge : next.get(state).entrySet()) {
                int child = edge.getValue();
                int f = state == 0 ? 0 : step(next, fail, fail[state], edge.getKey());
                fail[child] = f;
                for (String suffix : ending.get(f)) if (!ending.get(child).contains(suffix)) ending.get(child).add(suffix);
                order.add(child);
            }
        }
        TreeSet<Character> alphabet = new TreeSet<>();
        for (String trigger : triggers) for (char c : trigger.toCharArray()) alphabet.add(c);
        StringBuilder others = new StringBuilder("[^");
        for (char c : alphabet) others.append(GbnfGrammar.unicodeEscape(c));
        others.append(']');
        // The tags a completed trigger may open: each begin that starts with one of the triggers completed there.
        Map<String, String> dispatches = new LinkedHashMap<>();
        Map<String, java.util.BitSet> opened = new HashMap<>();
        for (int state = 0; state < next.size(); state++) {
            java.util.Set<String> tags = new java.util.LinkedHashSet<>();
            java.util.BitSet structuresHere = new java.util.BitSet();
            for (String trigger : ending.get(state)) {
                for (int k = 0; k < structures.size(); k++) {
                    Structure s = structures.get(k);
                    if (!s.begin().startsWith(trigger)) continue;
                    structuresHere.set(k);
                    tags.add("(?:" + Regex.quote(s.begin().substring(trigger.length())) + ")" + GrammarRules.call("s" + k + "-root")
                            + "(?:" + Regex.quote(s.end()) + ")" + GrammarRules.call("free0"));
                }
            }
            if (!tags.isEmpty()) {
                dispatches.put("dispatch" + state, String.join("|", tags));
                opened.put("dispatch" + state, structuresHere);
            }
        }
        java.util.BitSet reachable = new java.util.BitSet();
        Map<String, String> rules = new LinkedHashMap<>();
        for (int state = 0; state < next.size(); state++) {
            if (!ending.get(state).isEmpty()) continue;  // a completed trigger's state is its dispatch, not free text
            // Each character of the triggers' alphabet leads to its own state, or to the dispatch of the trigger it
            // completes (none where that trigger opens no structure: the character cannot be written); every other
            // character back to the start.
            Map<String, StringBuilder> byTarget = new TreeMap<>();
            for (char c : alphabet) {
                int target = step(next, fail, state, c);
                String rule = ending.get(target).isEmpty() ? "free" + target : "dispatch" + target;
                if (rule.startsWith("dispatch") && !dispatches.containsKey(rule)) continue;
                if (rule.startsWith("dispatch")) reachable.or(opened.get(rule));
                byTarget.computeIfAbsent(rule, t -> new StringBuilder()).append(GbnfGrammar.unicodeEscape(c));
            }
            List<String> options = new ArrayList<>();
            options.add(others + GrammarRules.call("free0"));
            byTarget.forEach((rule, chars) -> options.add("[" + chars + "]" + GrammarRules.call(rule)));
            rules.put("free" + state, "(?:" + String.join("|", options) + ")?");
        }
        // A begin whose own trigger is never the first completed (another trigger inside it completes first) never opens.
        for (int k = 0; k < structures.size(); k++) {
            if (!reachable.get(k)) {
                throw new IllegalArgumentException("structure " + k + "'s begin '" + structures.get(k).begin()
                        + "' can never open: another trigger is completed first as it is written");
            }
        }
        rules.putAll(dispatches);
        return rules;
    }

    /** The automaton's move from {@code state} on {@code c}, through failure links. */
    private static int step(List<Map<Character, Integer>> next, int[] fail, int state, char c) {
        while (true) {
            Integer to = next.get(state).get(c);
            if (to != null) return to;
            if (state == 0) return 0;
            state = fail[state];
        }
    }

    /** {@code pattern} with each rule it calls renamed to {@code prefix + name} (escapes skipped, so a written backslash is not a call). */
    static String renameCalls(String pattern, String prefix) {
        StringBuilder b = new StringBuilder(pattern.length() + 16);
        for (int i = 0; i < pattern.length(); i++) {
            char c = pattern.charAt(i);
            if (c == '\\' && i + 1 < pattern.length()) {
                if (pattern.startsWith("g{", i + 1)) {
                    b.append("\\g{").append(prefix);
                    i += 2;
                } else {
                    b.append(c).append(pattern.charAt(++i));
                }
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }
}
