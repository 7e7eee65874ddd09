# cmake -DPROGRAM=<metalearn> -DDIR=<empty folder> -P program_test.cmake
# Runs the installed command as a user would, and checks its exit codes, its output and
# the files of the run folder.
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")

# run(<expected exit code> <output regex> <arguments...>)
function(run code regex)
  execute_process(COMMAND "${PROGRAM}" ${ARGN} WORKING_DIRECTORY "${DIR}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  list(JOIN ARGN " " shown)
  if(NOT rc EQUAL code)
    message(FATAL_ERROR "metalearn ${shown}: exit code ${rc}, expected ${code}\n${out}\n${err}")
  endif()
  if(NOT "${out}${err}" MATCHES "${regex}")
    message(FATAL_ERROR "metalearn ${shown}: output does not match '${regex}':\n${out}\n${err}")
  endif()
endfunction()

run(0 "train ALGORITHM" --help)
run(0 "--inner-lr" train maml --help)
run(2 "unknown command 'fly'" fly)
run(2 "does not train on --tasks 'sinusoid'" train protonet --tasks sinusoid)
run(2 "--inner-steps" train maml --inner-steps)
run(0 "final test mse: [0-9.e+-]+ \\+- [0-9.e+-]+ over 20 episodes"
  train maml --tasks sinusoid --steps 30 --eval-every 15 --eval-episodes 5
  --final-eval-episodes 20 --meta-batch 5 --out run --quiet)
foreach(file config.json metrics.jsonl checkpoint.safetensors results.json)
  if(NOT EXISTS "${DIR}/run/${file}")
    message(FATAL_ERROR "run/${file} was not written")
  endif()
endforeach()
run(1 "already holds a run" train maml --tasks sinusoid --steps 30 --out run --quiet)
run(0 "continued from step 30" resume run --steps 40 --quiet)
run(0 "after 40 meta-steps, 10 support points: test mse .* over 12 episodes" evaluate run --episodes 12)
run(0 "learner.steps = 40" inspect run/checkpoint.safetensors)
run(1 "holds no run" evaluate nowhere)
# A run repeated from its config.json is the same run: the same final number.
run(0 "final test mse" train maml --config run/config.json --steps 40 --out again --quiet)
file(READ "${DIR}/run/results.json" first)
file(READ "${DIR}/again/results.json" second)
string(JSON first_mean GET "${first}" final mean)
string(JSON second_mean GET "${second}" final mean)
if(NOT first_mean STREQUAL second_mean)
  message(FATAL_ERROR "the repeated run ends at ${second_mean}, the first at ${first_mean}")
endif()

# Ctrl-C: SIGINT during training writes a checkpoint after the current meta-step and
# exits cleanly; resume continues from it.
execute_process(COMMAND bash -c
  "'${PROGRAM}' train maml --tasks sinusoid --steps 1000000 --eval-every 0 --out interrupted --quiet & pid=$!; sleep 1; kill -INT $pid; wait $pid"
  WORKING_DIRECTORY "${DIR}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "stopped after step ([0-9]+) with a checkpoint")
  message(FATAL_ERROR "SIGINT: exit code ${rc}\n${out}\n${err}")
endif()
set(stopped_at "${CMAKE_MATCH_1}")
if(NOT EXISTS "${DIR}/interrupted/checkpoint.safetensors" OR stopped_at LESS 1)
  message(FATAL_ERROR "SIGINT: no checkpoint after step ${stopped_at}")
endif()
math(EXPR more "${stopped_at} + 5")
run(0 "continued from step ${stopped_at}" resume interrupted --steps ${more} --quiet)

# evaluate a kept checkpoint file with another episode shape and inner steps.
run(0 "after 40 meta-steps, 5 support points: test mse .* over 7 episodes"
  evaluate run/checkpoint.safetensors --episodes 7 --shots 5 --steps 2)
run(0 "final test accuracy" train protonet --tasks glyphs --steps 1 --ways 3 --eval-ways 3
  --embedding-hidden 8 --eval-every 1 --eval-episodes 1 --final-eval-episodes 2 --out proto
  --quiet)
run(1 "does not take" evaluate proto --steps 3)

# A Neural Process on Gaussian-process tasks, with a flag of the GP family.
run(0 "final test log-likelihood: -?[0-9.]+ \\+- [0-9.]+ over 6 episodes"
  train cnp --tasks gp --steps 2 --meta-batch 4 --eval-every 2 --eval-episodes 3
  --final-eval-episodes 6 --noise-std 0.05 --encoder 16 --decoder 16 --out gp --quiet)
# Its targets include the context: the final evaluation and `evaluate` also score the
# context points and the further targets alone, beside the exact GP on the same tasks
# (which no model beats on average: here, on every part of these few tasks).
set(parts "on the context points -?[0-9.]+ \\+- [0-9.]+, on the further targets -?[0-9.]+ \\+- [0-9.]+; the exact GP on the same tasks: ")
run(0 "${parts}" evaluate gp --episodes 5)
file(READ "${DIR}/gp/results.json" gp_results)
foreach(part context new_targets)
  string(JSON model GET "${gp_results}" final ${part} mean)
  string(JSON exact GET "${gp_results}" final exact_gp ${part} mean)
  if(NOT model LESS exact)
    message(FATAL_ERROR "the CNP's ${part} log-likelihood ${model} is not below the exact GP's ${exact}")
  endif()
endforeach()
# evaluation.json keeps them too (string(JSON GET) fails on a missing key).
file(READ "${DIR}/gp/evaluation.json" gp_evaluation)
string(JSON evaluated GET "${gp_evaluation}" context mean)
string(JSON evaluated GET "${gp_evaluation}" exact_gp new_targets mean)
# A random kernel per task (the NP and ANP protocol) on the command line.
run(0 "final test log-likelihood"
  train cnp --tasks gp --steps 2 --meta-batch 4 --eval-every 2 --eval-episodes 3
  --final-eval-episodes 6 --kernel matern52 --length-scale 0.1 --length-scale-max 0.6
  --encoder 16 --decoder 16 --out gp_random --quiet)
file(READ "${DIR}/gp_random/config.json" random_config)
string(JSON kernel GET "${random_config}" gp kernel)
string(JSON most GET "${random_config}" gp length_scale_max)
if(NOT kernel STREQUAL "matern52" OR NOT most EQUAL 0.6)
  message(FATAL_ERROR "gp_random/config.json keeps kernel ${kernel} and length_scale_max ${most}")
endif()

# RL^2 on tabular MDPs with flags of the family, resumed, and evaluated on fresh MDPs;
# the supervised episodes' flags are refused.
run(0 "final test return: -?[0-9.]+ \\+- [0-9.]+ over 5 trials"
  train rl2 --tasks mdps --states 4 --actions 3 --horizon 3 --episodes 2 --hidden 8
  --trials 8 --minibatches 2 --epochs 1 --steps 2 --eval-every 2 --eval-episodes 4
  --final-eval-episodes 5 --out rl2 --quiet)
run(0 "continued from step 2" resume rl2 --steps 3 --quiet)
run(0 "after 3 meta-steps on mdps: mean return per trial .* over 6 trials"
  evaluate rl2 --episodes 6)
run(1 "describe episodes of supervised tasks" evaluate rl2 --ways 3)
