package dev.jvllm.structured;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A context-free grammar as named rules, each a pattern in {@link Regex}'s syntax that may also call
 * rules by name ({@code \g{name}}). The first rule is where the output starts. A grammar's text
 * (GBNF, {@link GbnfGrammar}) and a recursive JSON schema both come to this form; {@link Pushdown}
 * follows it.
 *
 * @param rules each rule's pattern by its name, the start rule first
 */
public record GrammarRules(Map<String, String> rules) {

    /** Grammars with more rules than this are refused (each is an automaton of its own). */
    static final int MAX_RULES = 10_000;

    public GrammarRules {
        if (rules.isEmpty()) throw new IllegalArgumentException("a grammar needs at least one rule");
        if (rules.size() > MAX_RULES) throw new IllegalArgumentException("the grammar has " + rules.size() + " rules, more than " + MAX_RULES);
        rules.forEach((name, pattern) -> {
            Objects.requireNonNull(pattern, name);
            if (!validName(name)) throw new IllegalArgumentException("'" + name + "' is not a rule name (letters, digits, '_' and '-')");
        });
        rules = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(rules));
    }

    /** Whether {@code name} may name a rule: letters, digits, {@code _} and {@code -}. */
    public static boolean validName(String name) {
        if (name.isEmpty()) return false;
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (!(c < 128 && (Character.isLetterOrDigit(c) || c == '_' || c == '-'))) return false;
        }
        return true;
    }

    /** The start rule's name. */
    public String start() {
        return rules.keySet().iterator().next();
    }

    /** The rules' names, the start rule first. */
    public List<String> names() {
        return new ArrayList<>(rules.keySet());
    }

    /** A call of the rule {@code name}, to write into a pattern. */
    public static String call(String name) {
        return "\\g{" + name + "}";
    }

    /** One line a rule, {@code name ::= pattern}. */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder();
        rules.forEach((name, pattern) -> b.append(name).append(" ::= ").append(pattern).append('\n'));
        return b.toString();
    }
}
