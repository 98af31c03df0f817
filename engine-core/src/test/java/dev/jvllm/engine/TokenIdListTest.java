package dev.jvllm.engine;

import dev.jvllm.CompletionOutput;
import dev.jvllm.FinishReason;
import dev.jvllm.RequestOutput;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TokenIdListTest {

    @Test
    void anEarlierOutputKeepsItsTokensWhileTheSequenceGrowsPastItsArray() {
        RequestGroup group = TestSequences.group("a", 0, 3, 1);
        EngineRequest sequence = group.leader();
        sequence.appendToken(50);
        RequestOutput early = group.toOutput();
        for (int i = 0; i < 40; i++) sequence.appendToken(60 + i % 30);  // the token array is replaced on the way
        assertEquals(List.of(50), early.outputs().getFirst().tokenIds());
        assertEquals(41, group.toOutput().outputs().getFirst().tokenIds().size());
        assertEquals(List.of(0, 1, 2), early.promptTokenIds());
    }

    @Test
    void behavesAsAnUnmodifiableListOfItsRange() {
        TokenIdList ids = new TokenIdList(new int[]{9, 1, 2, 3, 9}, 1, 4);
        assertEquals(List.of(1, 2, 3), ids);
        assertEquals(List.of(1, 2, 3).hashCode(), ids.hashCode());
        assertEquals(List.of(2, 3), ids.subList(1, 3));
        assertArrayEquals(new int[]{2}, ((TokenIdList) ids.subList(1, 2)).toIntArray());
        assertThrows(IndexOutOfBoundsException.class, () -> ids.get(3));
        assertThrows(UnsupportedOperationException.class, () -> ids.add(4));
        assertThrows(UnsupportedOperationException.class, () -> ids.set(0, 4));
    }

    @Test
    void outputsKeepItRatherThanCopyingIt() {
        TokenIdList ids = new TokenIdList(new int[]{4, 5}, 0, 2);
        CompletionOutput out = new CompletionOutput(0, "", ids, Double.NaN, null, FinishReason.LENGTH, null);
        assertSame(ids, out.tokenIds());
        assertArrayEquals(new int[]{4, 5}, out.tokenIdArray());
        assertSame(ids, new RequestOutput("r", null, ids, null, List.of(out), true).promptTokenIds());
    }
}
