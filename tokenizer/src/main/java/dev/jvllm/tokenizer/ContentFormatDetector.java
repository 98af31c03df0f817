package dev.jvllm.tokenizer;

import dev.jvllm.tokenizer.ChatTemplate.ContentFormat;
import dev.jvllm.tokenizer.JinjaAst.Const;
import dev.jvllm.tokenizer.JinjaAst.Expr;
import dev.jvllm.tokenizer.JinjaAst.Filter;
import dev.jvllm.tokenizer.JinjaAst.FilterBlock;
import dev.jvllm.tokenizer.JinjaAst.For;
import dev.jvllm.tokenizer.JinjaAst.GetAttr;
import dev.jvllm.tokenizer.JinjaAst.GetItem;
import dev.jvllm.tokenizer.JinjaAst.If;
import dev.jvllm.tokenizer.JinjaAst.Macro;
import dev.jvllm.tokenizer.JinjaAst.Name;
import dev.jvllm.tokenizer.JinjaAst.Node;
import dev.jvllm.tokenizer.JinjaAst.Set;
import dev.jvllm.tokenizer.JinjaAst.SetBlock;
import dev.jvllm.tokenizer.JinjaAst.Slice;
import dev.jvllm.tokenizer.JinjaAst.Test;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;

/**
 * Whether a template reads a message's content as a string or as OpenAI's list of parts, told from
 * its syntax tree as vLLM's {@code --chat-template-content-format auto} tells it: the template
 * takes parts when it has a {@code for} loop over a message's {@code content} (possibly filtered,
 * tested or sliced, as {@code message['content'] | selectattr('type', 'equalto', 'image')}), a
 * message being the target of a loop over {@code messages} or over a variable set from it
 * ({@code {% set loop_messages = messages[1:] %}}). Everything else reads content as a string.
 */
final class ContentFormatDetector {

    private final List<For> loops = new ArrayList<>();
    private final List<Set> assignments = new ArrayList<>();

    private ContentFormatDetector() {
    }

    static ContentFormat detect(List<Node> template) {
        ContentFormatDetector detector = new ContentFormatDetector();
        detector.collect(template);
        return detector.iteratesContent() ? ContentFormat.OPENAI : ContentFormat.STRING;
    }

    private void collect(List<Node> nodes) {
        for (Node node : nodes) {
            switch (node) {
                case For f -> {
                    loops.add(f);
                    collect(f.body());
                    collect(f.elseBody());
                }
                case Set s -> assignments.add(s);
                case If i -> {
                    i.bodies().forEach(this::collect);
                    collect(i.elseBody());
                }
                case SetBlock b -> collect(b.body());
                case Macro m -> collect(m.body());
                case FilterBlock b -> collect(b.body());
                default -> {
                }
            }
        }
    }

    private boolean iteratesContent() {
        // Names standing for the conversation: messages, and what is set from it, transitively.
        java.util.Set<String> conversations = new HashSet<>(List.of("messages"));
        for (boolean grew = true; grew; ) {
            grew = false;
            for (Set s : assignments) {
                if (s.attribute() == null && s.names().size() == 1 && accesses(s.value(), conversations, null)) {
                    grew |= conversations.add(s.names().getFirst());
                }
            }
        }
        java.util.Set<String> messages = new HashSet<>();
        for (For loop : loops) {
            if (loop.targets().size() == 1 && accesses(loop.iterable(), conversations, null)) {
                messages.add(loop.targets().getFirst());
            }
        }
        for (For loop : loops) {
            if (accesses(loop.iterable(), messages, "content")) return true;
        }
        return false;
    }

    /**
     * Whether {@code e} is one of {@code names} ({@code key} null) or its item {@code key}
     * ({@code name['key']}, {@code name.key}), under any filters, tests and slices.
     */
    private static boolean accesses(Expr e, java.util.Set<String> names, String key) {
        return switch (e) {
            case Filter f -> accesses(f.value(), names, key);
            case Test t -> accesses(t.value(), names, key);
            case Slice s -> accesses(s.target(), names, key);
            case Name n -> key == null && names.contains(n.name());
            case GetItem g -> key != null && g.target() instanceof Name n && names.contains(n.name())
                    && g.key() instanceof Const c && key.equals(c.value());
            case GetAttr g -> key != null && g.target() instanceof Name n && names.contains(n.name()) && key.equals(g.name());
            default -> false;
        };
    }
}
