package dev.jvllm.models;

import dev.jvllm.LLM;
import dev.jvllm.engine.DemoModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;

/** Tests that share one demo model on the CPU, loaded before the class's first test and closed after its last. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class OnTheDemoModel {

    protected LLM llm;

    @BeforeAll
    void load() {
        llm = LLM.builder().model(DemoModel.path().toString()).device("cpu").build();
    }

    @AfterAll
    void close() {
        llm.close();
    }
}
