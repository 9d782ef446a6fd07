"""After the study: videos tracked with a chosen model, result movies and movement features."""
