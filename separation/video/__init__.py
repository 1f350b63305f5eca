"""The karaoke video: the instrumental as the sound track and the words on screen,
filling in colour as they are sung (ASS subtitles burnt in by ffmpeg's libass, encoded
with libx264). Torch-free."""
