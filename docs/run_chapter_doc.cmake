# Runs one chapter with --doc and stores its stdout for the textbook. Exit 77 (no GPU) falls back
# to the output recorded on a GPU machine, when there is one; any other failure fails the build.
execute_process(COMMAND "${PROGRAM}" --doc OUTPUT_FILE "${OUTPUT}" ERROR_VARIABLE err RESULT_VARIABLE rc)
if(rc EQUAL 77 AND EXISTS "${RECORDED}")
  file(READ "${RECORDED}" recorded)
  file(WRITE "${OUTPUT}" "${recorded}")
elseif(rc EQUAL 77)
  file(WRITE "${OUTPUT}" "(This chapter needs a CUDA GPU; run it on one to see its output.)\n")
elseif(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} --doc failed (${rc}): ${err}")
endif()
