"""nbgrader configuration: the repository root is an nbgrader course.

solutions/NN-slug/ is the single source of each exercise (nbgrader's "source" step) and
`make exercises` releases it into exercises/NN-slug/ with nbgrader's own generate_assignment.
"""
import os

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = here
c.CourseDirectory.course_id = "mlcourse"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# The gradebook of the repo-as-course is a build artefact: keep it out of git.
os.makedirs(os.path.join(here, ".nbgrader"), exist_ok=True)
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(here, ".nbgrader", "gradebook.db")
c.Exchange.root = os.path.join(here, ".nbgrader", "exchange")
# Learners see a notebook without outputs; the datasets folder is not copied per assignment.
c.ClearOutputPreprocessor.enabled = True
c.ExecutePreprocessor.timeout = 120
