package dev.jvllm.hub;

/**
 * How far the download of one file of a model has come.
 *
 * @param model      the model id
 * @param file       the file's path in the repository
 * @param bytesDone  bytes on disk so far (a resumed download starts above 0)
 * @param bytesTotal the file's size
 */
public record DownloadProgress(String model, String file, long bytesDone, long bytesTotal) {

    /** Whether the whole file is there. */
    public boolean finished() {
        return bytesDone == bytesTotal;
    }
}
