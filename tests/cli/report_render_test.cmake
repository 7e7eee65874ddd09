# cmake -DPROGRAM=<metalearn> -DDIR=<empty folder> -DCHROMIUM=<chromium or empty>
#       -P report_render_test.cmake
# Trains a short run, opens its report.html in headless Chromium and checks that every
# chart drew as many points as the run logged (read back from the rendered page).
# Says it skips (the test's SKIP_REGULAR_EXPRESSION) when Chromium is not installed.
if(NOT CHROMIUM)
  message("Chromium not installed (Debian: chromium): the report's rendering is not checked")
  return()
endif()
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")
execute_process(COMMAND "${PROGRAM}" train maml --tasks sinusoid --steps 60 --eval-every 20
  --eval-episodes 4 --final-eval-episodes 8 --log-every 5 --meta-batch 4 --out run --quiet
  WORKING_DIRECTORY "${DIR}" RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "metalearn train: exit code ${rc}")
endif()
execute_process(COMMAND "${CHROMIUM}" --headless --no-sandbox --disable-gpu
  --user-data-dir=${DIR}/profile --dump-dom "file://${DIR}/run/report.html"
  RESULT_VARIABLE rc OUTPUT_VARIABLE dom ERROR_QUIET TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "chromium --dump-dom: exit code ${rc}")
endif()
string(REGEX MATCH "<pre id=\"rendered\">([^<]*)</pre>" _ "${dom}")
set(rendered "${CMAKE_MATCH_1}")
if(rendered STREQUAL "")
  message(FATAL_ERROR "the page did not report what it drew:\n${dom}")
endif()
# What the run logged: a training loss every 5 steps, an evaluation every 20.
file(STRINGS "${DIR}/run/metrics.jsonl" loss_lines REGEX "meta_loss")
file(STRINGS "${DIR}/run/metrics.jsonl" eval_lines REGEX "eval_mean")
list(LENGTH loss_lines losses)
list(LENGTH eval_lines evals)
string(JSON drawn_loss GET "${rendered}" train_loss 0)
string(JSON drawn_eval GET "${rendered}" eval 2)
string(JSON drawn_low GET "${rendered}" eval 0)
string(JSON drawn_speed GET "${rendered}" speed 0)
# Every logged step has the outer learning rate.
string(JSON drawn_lr GET "${rendered}" lr 0)
math(EXPR speeds "${losses} - 1")
# The task figure: the true function, the 10 support points, before and after (101 each).
string(JSON drawn_truth GET "${rendered}" task 0)
string(JSON drawn_support GET "${rendered}" task 1)
string(JSON drawn_after GET "${rendered}" task 3)
if(NOT drawn_truth EQUAL 101 OR NOT drawn_support EQUAL 10 OR NOT drawn_after EQUAL 101)
  message(FATAL_ERROR "the task figure drew ${rendered}")
endif()
if(NOT losses EQUAL 12 OR NOT drawn_loss EQUAL losses OR NOT drawn_eval EQUAL evals
   OR NOT drawn_low EQUAL evals OR NOT evals EQUAL 3 OR NOT drawn_speed EQUAL speeds
   OR NOT drawn_lr EQUAL losses)
  message(FATAL_ERROR "drawn: ${rendered}; logged: ${losses} losses, ${evals} evaluations")
endif()
message("report rendered: ${rendered}")
