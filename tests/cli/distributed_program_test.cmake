# cmake -DPROGRAM=<metalearn> -DMPIEXEC=<mpiexec> "-DMPIFLAGS=<flags>" -DDIR=<folder>
#   -P distributed_program_test.cmake
# `metalearn train|resume --distributed` under mpiexec: with =deterministic, 2 and 3
# ranks train and resume to the single process's numbers (the same bits, so the same
# final test metric to the last digit); a run continues on another number of ranks; an
# error ends the job with its message.
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")

# run(<expected exit code: 0 or FAIL> <output regex> <command...>)
function(run code regex)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${DIR}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  list(JOIN ARGN " " shown)
  if(code STREQUAL "FAIL")
    if(rc EQUAL 0)
      message(FATAL_ERROR "${shown}: exit code 0, expected a failure\n${out}\n${err}")
    endif()
  elseif(NOT rc EQUAL code)
    message(FATAL_ERROR "${shown}: exit code ${rc}, expected ${code}\n${out}\n${err}")
  endif()
  if(NOT "${out}${err}" MATCHES "${regex}")
    message(FATAL_ERROR "${shown}: output does not match '${regex}':\n${out}\n${err}")
  endif()
endfunction()

function(final_mean dir var)
  file(READ "${DIR}/${dir}/results.json" json)
  string(JSON mean GET "${json}" final mean)
  set(${var} "${mean}" PARENT_SCOPE)
endfunction()

# MAML, second order, task by task (batch_tasks folds a stacked graph: equal to
# rounding only).
set(args train maml --tasks sinusoid --steps 6 --eval-every 3 --eval-episodes 5
  --final-eval-episodes 20 --meta-batch 5 --no-batch-tasks --quiet)
set(mpi "${MPIEXEC}" -n)
run(0 "final test mse" "${PROGRAM}" ${args} --out single)
run(0 "over 2 rank\\(s\\), deterministic.*final test mse"
  ${mpi} 2 ${MPIFLAGS} "${PROGRAM}" ${args} --out two --distributed=deterministic)
run(0 "over 3 rank\\(s\\), run folder" ${mpi} 3 ${MPIFLAGS} "${PROGRAM}" ${args} --out three --distributed)
final_mean(single single_mean)
final_mean(two two_mean)
final_mean(three three_mean)
if(NOT single_mean STREQUAL two_mean)
  message(FATAL_ERROR "2 deterministic ranks end at ${two_mean}, one process at ${single_mean}")
endif()
# The all-reduce sums in MPI's order: equal to rounding.
string(SUBSTRING "${single_mean}" 0 6 single_head)
string(SUBSTRING "${three_mean}" 0 6 three_head)
if(NOT single_head STREQUAL three_head)
  message(FATAL_ERROR "3 ranks end at ${three_mean}, one process at ${single_mean}")
endif()
foreach(file checkpoint.safetensors metrics.jsonl results.json report.html)
  if(NOT EXISTS "${DIR}/two/${file}")
    message(FATAL_ERROR "two/${file} was not written")
  endif()
endforeach()

# Resume on another number of ranks: the single process's continuation.
run(0 "continued from step 6" "${PROGRAM}" resume single --steps 9 --quiet)
run(0 "continued from step 6" ${mpi} 3 ${MPIFLAGS} "${PROGRAM}" resume two --steps 9
  --distributed=deterministic --quiet)
final_mean(single single_mean)
final_mean(two two_mean)
if(NOT single_mean STREQUAL two_mean)
  message(FATAL_ERROR "resumed on 3 ranks: ${two_mean}; in one process: ${single_mean}")
endif()

# Errors: RL^2 has no meta-batch of tasks to share; a folder that holds a run is refused
# (on rank 0, which ends the job with its message); the flag takes two modes only; a
# Neural Process (whose own options hold a `deterministic`) trains on 2 ranks.
run(FAIL "rl2 on bandits collects its own trials" ${mpi} 2 ${MPIFLAGS} "${PROGRAM}"
  train rl2 --tasks bandits --steps 2 --out rl2 --distributed)
run(FAIL "rank 0 of 2: .*two already holds a run" ${mpi} 2 ${MPIFLAGS} "${PROGRAM}"
  ${args} --out two --distributed)
run(2 "--distributed: .*not in" "${PROGRAM}" ${args} --out x --distributed=fast)
run(0 "anp on gp: 2 meta-steps of 4 task\\(s\\) over 2 rank\\(s\\).*final test log-likelihood"
  ${mpi} 2 ${MPIFLAGS} "${PROGRAM}" train anp --tasks gp --steps 2 --meta-batch 4
  --eval-every 2 --eval-episodes 4 --final-eval-episodes 4 --out anp --distributed --quiet)
