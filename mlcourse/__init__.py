"""mlcourse: the infrastructure of the course (datasets, exercise tooling, grading, progress).

What a lesson teaches lives in the lesson's notebook; this package holds only what is not the
point of any lesson.
"""

__version__ = "0.1.0"
