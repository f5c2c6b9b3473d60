"""CS231n-style ``layers.py`` files, each planted with one thing the course's graders meet in real
submissions (``meta_tests/test_cs231n_student_path.py`` checks how each is reported)."""
