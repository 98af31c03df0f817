package dev.jvllm.hub;

import dev.jvllm.JvllmException;

import java.util.List;

/** A model reference matched no local directory and no cached snapshot; the message lists every place looked at. */
public class ModelNotFoundException extends JvllmException {

    private final String model;
    private final List<String> placesLookedAt;

    public ModelNotFoundException(String model, String reason, List<String> placesLookedAt) {
        super("model '" + model + "' " + reason + "; looked at:" + bulleted(placesLookedAt));
        this.model = model;
        this.placesLookedAt = List.copyOf(placesLookedAt);
    }

    /** The reference as given. */
    public String model() {
        return model;
    }

    /** Each place looked at, with what was wrong there. */
    public List<String> placesLookedAt() {
        return placesLookedAt;
    }

    private static String bulleted(List<String> places) {
        StringBuilder text = new StringBuilder();
        places.forEach(place -> text.append("\n  - ").append(place));
        return text.toString();
    }
}
