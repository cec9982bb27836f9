# Runs one chapter with --doc (plus ARGS) and stores its stdout for the textbook.
# Exit 77 (no GPU) falls back to the output recorded on a GPU machine (RECORDED), when there is
# one; with ALLOW_RECORDED, any failure does (e.g. the real model is not in the cache). Any other
# failure fails the build.
execute_process(COMMAND "${PROGRAM}" --doc ${ARGS} OUTPUT_FILE "${OUTPUT}" ERROR_VARIABLE err
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 AND (rc EQUAL 77 OR ALLOW_RECORDED) AND EXISTS "${RECORDED}")
  file(READ "${RECORDED}" recorded)
  file(WRITE "${OUTPUT}" "${recorded}")
elseif(rc EQUAL 77)
  file(WRITE "${OUTPUT}" "(This chapter needs a CUDA GPU; run it on one to see its output.)\n")
elseif(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} --doc ${ARGS} failed (${rc}): ${err}")
endif()
