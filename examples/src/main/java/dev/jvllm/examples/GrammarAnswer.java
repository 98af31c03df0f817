package dev.jvllm.examples;

import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import dev.jvllm.StructuredOutputs;

/**
 * An answer held to a grammar (GBNF, as vLLM's {@code grammar} structured output): the model writes an
 * arithmetic expression of any nesting, and the answer always parses, so a small evaluator reads it.
 */
public final class GrammarAnswer {

    /** Sums and products of small numbers (a few terms each, so that an answer ends), with brackets of any depth. */
    static final String ARITHMETIC = """
            root   ::= expr
            expr   ::= term (("+" | "-") term){0,3}
            term   ::= factor (("*" | "/") factor){0,2}
            factor ::= [1-9] [0-9]? | "(" expr ")"
            """;

    private GrammarAnswer() {
    }

    /** The expression the model writes after {@code question}, held to {@link #ARITHMETIC}. */
    public static String expression(LLM llm, String question) {
        SamplingParams params = SamplingParams.builder().temperature(0.8).seed(1L).maxTokens(40)
                .structuredOutputs(StructuredOutputs.grammar(ARITHMETIC)).build();
        return llm.generate(question + "\n", params).text();
    }

    /** The value of an expression of {@link #ARITHMETIC} (division as doubles). */
    public static double evaluate(String expression) {
        return new Evaluator(expression).whole();
    }

    private static final class Evaluator {
        private final String text;
        private int at;

        Evaluator(String text) {
            this.text = text;
        }

        double whole() {
            double value = expr();
            if (at != text.length()) throw new IllegalArgumentException("not an expression of the grammar: " + text);
            return value;
        }

        private double expr() {
            double value = term();
            while (at < text.length() && (text.charAt(at) == '+' || text.charAt(at) == '-')) {
                value = text.charAt(at++) == '+' ? value + term() : value - term();
            }
            return value;
        }

        private double term() {
            double value = factor();
            while (at < text.length() && (text.charAt(at) == '*' || text.charAt(at) == '/')) {
                value = text.charAt(at++) == '*' ? value * factor() : value / factor();
            }
            return value;
        }

        private double factor() {
            if (at < text.length() && text.charAt(at) == '(') {
                at++;
                double value = expr();
                if (at >= text.length() || text.charAt(at++) != ')') throw new IllegalArgumentException("unclosed bracket: " + text);
                return value;
            }
            int start = at;
            while (at < text.length() && Character.isDigit(text.charAt(at))) at++;
            if (start == at) throw new IllegalArgumentException("a number expected at " + start + ": " + text);
            return Integer.parseInt(text.substring(start, at));
        }
    }

    public static void main(String[] args) {
        String model = args.length > 0 ? args[0] : "models/jvllm-demo";
        try (LLM llm = new LLM(model)) {
            String expression = expression(llm, "Write a sum of a few numbers:");
            System.out.println(expression + " = " + evaluate(expression));
        }
    }
}
