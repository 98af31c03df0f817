package dev.jvllm.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jvllm.tokenizer.ChatTemplateException.Reason;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;

class ChatTemplateTest {

    private static final List<Map<String, Object>> CONVERSATION = List.of(
            Map.of("role", "system", "content", "Be brief."),
            Map.of("role", "user", "content", "  Hi  "),
            Map.of("role", "assistant", "content", "Hello!"));

    private static String render(String template) {
        return ChatTemplate.compile(template).render(CONVERSATION, false);
    }

    private static String render(String template, Map<String, ?> variables) {
        return ChatTemplate.compile(template).render(CONVERSATION, false, variables);
    }

    @Nested
    class JinjaAsTransformersRendersIt {

        @Test
        void blockTagsEatTheirNewlineAndIndentation() {
            // transformers uses trim_blocks=True and lstrip_blocks=True
            String template = "{% for m in messages %}\n    {% if m.role == 'user' %}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}\n";
            assertEquals("[  Hi  ]\n", render(template));
        }

        @Test
        void dashModifiersStripWhitespaceAroundTags() {
            assertEquals("ab", render("a   \n  {{- '' -}}  \n  b"));
            // {#- strips "\n" before it; trim_blocks drops the newline after #}
            assertEquals("a  b", render("a\n{#- comment #}\n  b"));
        }

        @Test
        void aSingleTrailingNewlineOfTheTemplateIsDropped() {
            assertEquals("x\n", render("x\n\n"));
        }

        @Test
        void setInsideALoopDoesNotLeakButNamespaceDoes() {
            String template = "{% set count = 0 %}{% set ns = namespace(count=0) %}"
                    + "{% for m in messages %}{% set count = count + 1 %}{% set ns.count = ns.count + 1 %}{% endfor %}"
                    + "{{ count }} {{ ns.count }}";
            assertEquals("0 3", render(template));
        }

        @Test
        void namespaceAcceptsMappingsPairsAndKeywordUnpacking() {
            assertEquals("1 2 3", render("{% set d = {'a': 1} %}{% set ns = namespace(**d) %}{% set p = namespace([['b', 2]]) %}"
                    + "{% set q = namespace(d, c=3) %}{{ ns.a }} {{ p.b }} {{ q.c }}"));
        }

        @Test
        void loopVariablesDescribeThePosition() {
            String template = "{% for m in messages %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}";
            assertEquals("0TrueFalse3 1FalseFalse3 2FalseTrue3 ", render(template));
        }

        @Test
        void negativeStepSlicingReversesLikePython() {
            assertEquals("assistant user system ", render("{% for m in messages[::-1] %}{{ m.role }} {% endfor %}"));
            assertEquals("['user', 'assistant']", render("{{ (messages | map(attribute='role') | list)[1:] }}"));
            assertEquals("olleh", render("{{ 'hello'[::-1] }}"));
            assertEquals("🦙b", render("{{ 'a🦙b'[1:] }}"));
        }

        @Test
        void pythonStringMethodsBehaveAsInPython() {
            assertEquals("Hi|Hi  |  Hi|True|False", render(
                    "{% set c = messages[1].content %}{{ c.strip() }}|{{ c.lstrip() }}|{{ c.rstrip() }}|"
                            + "{{ c.strip().startswith('H') }}|{{ c.endswith('x') }}"));
            assertEquals("['a', 'b,c']|['a,b', 'c']|['x', 'y']|think", render(
                    "{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '  x \\n y '.split() }}|"
                            + "{{ '\\n\\nthink\\n'.strip('\\n') }}"));
            assertEquals("['1', '2 3 ']|[' 1 2', '3']", render("{{ ' 1 2 3 '.split(none, 1) }}|{{ ' 1 2 3 '.rsplit(none, 1) }}"));
            assertEquals("Hello World|HELLO|a-b|3", render(
                    "{{ 'hello world'.title() }}|{{ 'hello'.upper() }}|{{ '-'.join(['a', 'b']) }}|{{ 'a🦙b' | length }}"));
        }

        @Test
        void tojsonUsesPythonJsonDumpsSpacingAndKeepsUnicode() {
            Map<String, Object> parameters = new java.util.LinkedHashMap<>();
            parameters.put("type", "object");
            parameters.put("required", List.of("city"));
            parameters.put("strict", true);
            parameters.put("limit", 2.5);
            parameters.put("note", "naïve \"quote\" <tag>");
            Map<String, Object> tool = new java.util.LinkedHashMap<>();
            tool.put("name", "get_weather");
            tool.put("parameters", parameters);
            String rendered = render("{{ tool | tojson }}", Map.of("tool", tool));
            assertEquals("{\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", \"required\": [\"city\"], "
                    + "\"strict\": true, \"limit\": 2.5, \"note\": \"naïve \\\"quote\\\" <tag>\"}}", rendered);
            assertEquals("{\n  \"a\": [\n    1,\n    null\n  ]\n}", render("{{ {'a': [1, none]} | tojson(indent=2) }}"));
        }

        @Test
        void valuesPrintAsPythonStrDoes() {
            assertEquals("None True 1.0 1e+16 0.0001 [1, 'a', None] {'k': False}",
                    render("{{ none }} {{ true }} {{ 1.0 }} {{ 1e16 }} {{ 0.0001 }} {{ [1, 'a', none] }} {{ {'k': false} }}"));
        }

        @Test
        void testsCheckTypesAndDefinedness() {
            assertEquals("True True True False True True",
                    render("{{ messages[0].content is string }} {{ messages[0] is mapping }} {{ messages is iterable }} "
                            + "{{ messages[0].tool_calls is defined }} {{ tools is none }} {{ 3 is divisibleby 3 }}"));
        }

        @Test
        void filtersOperatorPrecedenceMatchesJinja() {
            // a filter binds tighter than + and -, as in messages|length - 1
            assertEquals("2 x!", render("{{ messages|length - 1 }} {{ 'x' + ' !' | replace(' ', '') }}"));
            assertEquals("1024 3 2.5 -1 7", render("{{ 2 ** 10 }} {{ 7 // 2 }} {{ 5 / 2 }} {{ -7 // 5 + 1 }} {{ 1 + 2 * 3 }}"));
        }

        @Test
        void undefinedValuesPrintEmptyAndFailWhenUsed() {
            assertEquals("[]", render("[{{ messages[0].missing }}]"));
            ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render("{{ messages[0].missing.strip() }}"));
            assertEquals(Reason.RENDER, e.reason());
            assertTrue(e.getMessage().contains("has no attribute 'missing'"), e.getMessage());
        }

        @Test
        void macrosRenderWithArgumentsAndDefaults() {
            assertEquals("<system:Be brief.>(user)", render(
                    "{% macro tag(role, text='') %}{% if text %}<{{ role }}:{{ text }}>{% else %}({{ role }}){% endif %}{% endmacro %}"
                            + "{{ tag(messages[0].role, messages[0].content) }}{{ tag('user') }}"));
        }

        @Test
        void raiseExceptionFailsWithTheTemplatesMessage() {
            ChatTemplateException e = assertThrows(ChatTemplateException.class,
                    () -> render("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"));
            assertEquals(Reason.RAISED_BY_TEMPLATE, e.reason());
            assertEquals("System role not supported", e.getMessage());
        }

        @Test
        void generationPromptAndSpecialTokensAreVariables() {
            ChatTemplate template = ChatTemplate.compile(
                    "{{ bos_token }}{% if add_generation_prompt %}<gen>{% endif %}{{ eos_token }}", Map.of("bos_token", "<s>", "eos_token", "</s>"));
            assertEquals("<s><gen></s>", template.render(CONVERSATION, true));
            assertEquals("<s></s>", template.render(CONVERSATION, false));
        }

        @Test
        void strftimeNowFormatsTheCurrentDate() {
            String year = String.valueOf(java.time.LocalDate.now().getYear());
            assertTrue(render("{{ strftime_now('%d %b %Y') }}").endsWith(year));
        }

        @Test
        void syntaxErrorsNameTheLine() {
            ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> ChatTemplate.compile("ok\n{% if x %}\nno end"));
            assertEquals(Reason.SYNTAX, e.reason());
            assertTrue(e.getMessage().contains("endif"), e.getMessage());
            ChatTemplateException unknown = assertThrows(ChatTemplateException.class, () -> ChatTemplate.compile("a\n{% include 'x' %}"));
            assertTrue(unknown.getMessage().startsWith("line 2:"), unknown.getMessage());
        }

        @Test
        void templateFromAListPicksTheDefaultEntry() throws Exception {
            var config = new com.fasterxml.jackson.databind.ObjectMapper().readTree(
                    "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}]}");
            assertEquals("D", ChatTemplate.sourceFromTokenizerConfig(config, java.nio.file.Path.of("tokenizer_config.json")).orElseThrow());
        }
    }

    /** Content given as OpenAI's list of parts, as LLaVA's templates read it. */
    @Nested
    class ContentParts {

        /** The shape of llava-hf's chat_template.json: images of a message first, then its text; an assistant's text marked for masks. */
        static final String LLAVA_HF_STYLE = "{% for message in messages %}{% if message['role'] != 'system' %}"
                + "{{ message['role'].upper() + ': '}}{% endif %}"
                + "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
                + "{{ '<image>\\n' }}{% endfor %}"
                + "{# Render all text next #}{% if message['role'] != 'assistant' %}"
                + "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
                + "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
                + "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}"
                + "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

        private static Map<String, Object> text(String text) {
            return Map.of("type", "text", "text", text);
        }

        private static final Map<String, Object> IMAGE = Map.of("type", "image");

        @Test
        void selectattrPicksTheImagePartsThenTheTextParts() {
            String template = "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
                    + "{% for c in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
                    + "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}{{ c['text'] + ' ' }}{% endfor %}"
                    + "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";
            List<Map<String, Object>> messages = List.of(Map.of("role", "user",
                    "content", List.of(text("What differs?"), IMAGE, text("Be brief."), IMAGE)));
            assertEquals("USER: <image>\n<image>\nWhat differs? Be brief. ASSISTANT:",
                    ChatTemplate.compile(template).render(messages, true));
            assertEquals("USER: <image>\n<image>\nWhat differs? Be brief. ",
                    ChatTemplate.compile(template).render(messages, false));
        }

        @Test
        void rejectattrAndSelectattrWithoutATestKeepTruthyOrFalsyAttributes() {
            List<Map<String, Object>> messages = List.of(Map.of("role", "user",
                    "content", List.of(text("a"), Map.of("type", "text", "text", ""), IMAGE)));
            String template = "{% for m in messages %}{{ m.content | selectattr('text') | map(attribute='text') | join(',') }}|"
                    + "{{ m.content | rejectattr('type', 'equalto', 'text') | length }}{% endfor %}";
            assertEquals("a|1", ChatTemplate.compile(template).render(messages, false));
        }

        @Test
        void generationBlocksRenderTheirBody() {
            List<Map<String, Object>> conversation = List.of(
                    Map.of("role", "user", "content", List.of(IMAGE, text("What is shown?"))),
                    Map.of("role", "assistant", "content", List.of(text("A cat."))),
                    Map.of("role", "user", "content", List.of(text("And its colour?"))));
            assertEquals("USER: <image>\nWhat is shown? ASSISTANT: A cat. USER: And its colour? ASSISTANT:",
                    ChatTemplate.compile(LLAVA_HF_STYLE).render(conversation, true));
            assertEquals("abc", render("a {%- generation -%} b {%- endgeneration -%} c"));
            assertEquals("[Hello!]", render("{% for m in messages if m.role == 'assistant' %}{% generation %}[{{ m.content }}]"
                    + "{% endgeneration %}{% endfor %}"));
        }

        @Test
        void theContentFormatIsOpenAisWhereALoopRunsOverAMessagesContent() {
            assertEquals(ChatTemplate.ContentFormat.OPENAI, ChatTemplate.compile(LLAVA_HF_STYLE).contentFormat());
            // a message from a loop over a variable set from messages, content read by attribute
            assertEquals(ChatTemplate.ContentFormat.OPENAI, ChatTemplate.compile("{% set loop_messages = messages[1:] %}"
                    + "{% for m in loop_messages %}{% for part in m.content %}{{ part.text }}{% endfor %}{% endfor %}").contentFormat());
            // a template taking both, as Gemma 3's
            assertEquals(ChatTemplate.ContentFormat.OPENAI, ChatTemplate.compile("{% for m in messages %}{% if m['content'] is string %}"
                    + "{{ m['content'] }}{% else %}{% for item in m['content'] %}{{ item['text'] }}{% endfor %}{% endif %}{% endfor %}")
                    .contentFormat());
        }

        @Test
        void theContentFormatIsStringOtherwise() {
            for (String template : List.of(
                    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
                    "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '</s>\\n' }}{% endfor %}",
                    // indexing a part is not iterating the parts (as Llama 3.2's system message), nor is a loop over another list
                    "{{ messages[0]['content'][0]['text'] }}{% for t in tools %}{{ t }}{% endfor %}",
                    // a loop over the content of something that is not a message
                    "{% for c in document['content'] %}{{ c }}{% endfor %}{% for m in messages %}{{ m.content }}{% endfor %}")) {
                assertEquals(ChatTemplate.ContentFormat.STRING, ChatTemplate.compile(template).contentFormat(), template);
            }
        }
    }

    @Nested
    class UntrustedTemplates {

        @Test
        void javaMethodsAreNotReachable() {
            for (String probe : List.of("{{ ''.getClass() }}", "{{ messages.getClass().forName('java.lang.Runtime') }}",
                    "{{ messages[0].class }}{{ messages[0].getClass() }}", "{{ range.__globals__ }}{{ ''.__class__.__mro__ }}")) {
                ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render(probe), probe);
                assertEquals(Reason.RENDER, e.reason(), probe);
                assertFalse(e.getMessage().contains("java."), e.getMessage());
            }
            assertEquals("", render("{{ messages[0].class }}"));
        }

        @Test
        void nonTerminatingTemplateTimesOutAndTheNextRenderWorks() {
            ChatTemplate spin = ChatTemplate.compile(
                    "{% for i in range(100000) %}{% for j in range(100000) %}{% for k in range(100000) %}{% endfor %}{% endfor %}{% endfor %}")
                    .withLimits(new ChatTemplate.Limits(Duration.ofMillis(300), 1_000_000, 100_000, 100_000, 64));
            ChatTemplateException e = assertTimeoutPreemptively(Duration.ofSeconds(5),
                    () -> assertThrows(ChatTemplateException.class, () -> spin.render(CONVERSATION, false)));
            assertEquals(Reason.TIMEOUT, e.reason());
            assertTrue(e.getMessage().contains("300 ms"), e.getMessage());
            assertEquals("Be brief.", render("{{ messages[0].content }}"));
        }

        @Test
        void hugeRangeIsRefusedBeforeAllocating() {
            ChatTemplateException e = assertThrows(ChatTemplateException.class,
                    () -> render("{% for i in range(10**9) %}x{% endfor %}"));
            assertEquals(Reason.LIMIT_EXCEEDED, e.reason());
            assertTrue(e.getMessage().contains("range"), e.getMessage());
        }

        @Test
        void outputLargerThanTheCapFails() {
            ChatTemplateException e = assertThrows(ChatTemplateException.class,
                    () -> render("{% for i in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}"));
            assertEquals(Reason.LIMIT_EXCEEDED, e.reason());
            assertTrue(e.getMessage().contains("1000000"), e.getMessage());
        }

        @Test
        void hugeStringsAndListsFailBeforeAllocating() {
            assertEquals(Reason.LIMIT_EXCEEDED,
                    assertThrows(ChatTemplateException.class, () -> render("{% set s = 'x' * 10**9 %}")).reason());
            assertEquals(Reason.LIMIT_EXCEEDED,
                    assertThrows(ChatTemplateException.class, () -> render("{% set l = [0] * 10**9 %}")).reason());
            assertEquals(Reason.LIMIT_EXCEEDED, assertThrows(ChatTemplateException.class,
                    () -> render("{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}")).reason());
        }

        @Test
        void unboundedMacroRecursionFails() {
            ChatTemplateException e = assertThrows(ChatTemplateException.class,
                    () -> render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"));
            assertEquals(Reason.LIMIT_EXCEEDED, e.reason());
        }

        @Test
        void mutatingMethodsAreRefusedAsInTransformersSandbox() {
            ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render("{% set x = messages.append(1) %}"));
            assertTrue(e.getMessage().contains("unsafe"), e.getMessage());
            assertEquals(3, CONVERSATION.size());
        }

        @Test
        void onlyPlainValuesMayBePassedIn() {
            ChatTemplateException e = assertThrows(ChatTemplateException.class,
                    () -> render("{{ x }}", Map.of("x", new ArrayList<>(List.of(new Object())))));
            assertEquals(Reason.BAD_INPUT, e.reason());
            assertTrue(e.getMessage().contains("x[0]"), e.getMessage());
            assertEquals(Reason.BAD_INPUT, assertThrows(ChatTemplateException.class,
                    () -> render("{{ x }}", Map.of("x", Thread.currentThread()))).reason());
        }

        @Test
        void renderingDoesNotChangeTheCallersMessages() {
            List<Map<String, Object>> messages = new ArrayList<>();
            messages.add(new java.util.HashMap<>(Map.of("role", "user", "content", "hi")));
            ChatTemplate.compile("{% set ns = namespace(m=messages[0]) %}{{ ns.m.content }}").render(messages, false);
            assertEquals(Map.of("role", "user", "content", "hi"), messages.get(0));
        }
    }
}
